//! A TLS session over hotwire's stream layer, recorded to a file.
//!
//! ```text
//! cargo run --example tls_session -- 127.0.0.1:4433 localhost ca.pem rustls session.hwr
//! ```
//!
//! Connects (non-blocking TCP, then TLS with the given backend, trusting only `ca.pem`), sends three
//! lines, prints what comes back (an `openssl s_server -rev` answers each line reversed), and records
//! the plaintext of the whole session into the recording file (`hotwire replay FILE` shows it).

use std::io::{self, Write};
use std::time::Duration;

use hotwire::stream::record::IntoRecorded;
use hotwire::stream::tls::{TlsBackend, TlsConfig};
use hotwire::stream::{read_timeout, wait_connected, write_all_timeout, IntoTls};
use hotwire::stream::{TcpOptions, TcpStream};

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, name, ca, backend, record] = args.as_slice() else {
        eprintln!("usage: tls_session ADDR SERVER_NAME CA_FILE rustls|openssl RECORDING");
        std::process::exit(2);
    };
    let addr = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    let backend: TlsBackend = backend
        .parse()
        .map_err(|e: String| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let connector = TlsConfig {
        backend,
        ..TlsConfig::with_ca_file(ca)
    }
    .build()?;
    let mut stream = TcpStream::connect(addr, &TcpOptions::default())?
        .into_tls(&connector, name)?
        .into_recorded(record)?;
    wait_connected(&mut stream, Duration::from_secs(5))?;
    let tls = stream.get_ref();
    println!(
        "connected to {addr} with {:?}, {:?}",
        connector.backend(),
        tls.version()
    );
    let mut buf = [0u8; 4096];
    for line in [
        "hello hotwire\n",
        "low latency\n",
        "recorded and replayed\n",
    ] {
        write_all_timeout(&mut stream, line.as_bytes(), Duration::from_secs(5))?;
        let mut got = Vec::new();
        while !got.ends_with(b"\n") {
            let n = read_timeout(&mut stream, &mut buf, Duration::from_secs(5))?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            got.extend_from_slice(&buf[..n]);
        }
        print!("> {line}< {}", String::from_utf8_lossy(&got));
    }
    stream.flush()?;
    Ok(())
}
