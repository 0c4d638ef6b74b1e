//! `WsEndpoint` closing on purpose against a server that answers the close but never closes the
//! TCP connection (RFC 6455 §7.1.1 has the server close first): the client sends a FIN, not a
//! reset, after `CLOSE_TIMEOUT`, and reports the end as `Disconnect::Requested`.
#![cfg(feature = "ws")]

mod util;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use hotwire::prelude::*;
use hotwire::service::ws::CLOSE_TIMEOUT;

/// Closes on its first timer tick.
#[derive(Default)]
struct Quitter {
    ended: Option<(String, Instant)>,
}

impl WsHandler for Quitter {
    fn on_frame(&mut self, _: Frame<'_>, _: &mut WsOut<'_>, _: &mut ()) -> Result<Flow, Error> {
        Ok(Flow::Continue)
    }
    fn on_timer(&mut self, _: &mut WsOut<'_>, _: Instant, _: &mut ()) -> Result<Flow, Error> {
        Ok(Flow::Close)
    }
    fn on_event(&mut self, event: &Event<'_>, _: &mut ()) {
        if let Event::Disconnected { reason, retry_in } = event {
            assert!(matches!(reason, Disconnect::Requested), "{reason}");
            assert_eq!(*retry_in, None, "a close on purpose does not reconnect");
            self.ended = Some((reason.to_string(), Instant::now()));
        }
    }
}

#[test]
fn a_server_that_keeps_the_connection_gets_a_fin_after_the_close_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        util::ws_accept(&mut s);
        // The client's close: 2 header bytes, 4 mask bytes, the 2-byte code.
        let mut close = [0u8; 8];
        s.read_exact(&mut close).unwrap();
        assert_eq!(close[0], 0x88, "a close frame");
        let echoed = Instant::now();
        s.write_all(&[0x88, 0x02, 0x03, 0xe8]).unwrap();
        // Keep the connection open; wait for the client's end of stream.
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = [0u8; 64];
        let end = s.read(&mut rest);
        (end.map_err(|e| e.kind()), echoed.elapsed())
    });
    let endpoint = WsEndpoint::new(&format!("ws://{addr}/"), Quitter::default())
        .unwrap()
        .with_timer(Duration::from_millis(20));
    let mut service = MioSelector::new()
        .unwrap()
        .into_io_service()
        .with_poll_timeout(Duration::from_millis(1));
    let id = service.register(endpoint);
    let deadline = Instant::now() + Duration::from_secs(10);
    while service.endpoint(id).handler().ended.is_none() {
        assert!(Instant::now() < deadline, "the endpoint never ended");
        service.poll(&mut ()).unwrap();
    }
    let (end, after) = server.join().unwrap();
    // A FIN reads as end of stream (a reset would be ConnectionReset).
    assert_eq!(end, Ok(0));
    assert!(
        after >= CLOSE_TIMEOUT && after < CLOSE_TIMEOUT + Duration::from_millis(800),
        "FIN {after:?} after the close echo"
    );
    assert_eq!(
        service.endpoint(id).handler().ended.as_ref().unwrap().0,
        "closed by the endpoint"
    );
    assert_eq!(service.state(id), hotwire::service::EndpointState::Stopped);
}
