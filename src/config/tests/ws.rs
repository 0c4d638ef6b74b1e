//! `[endpoint.ws]`: the permessage-deflate offer.

use super::{fails_at, parse};
use crate::config::WsDeflate;

#[test]
fn deflate_is_off_by_default_and_takes_its_keys() {
    let c = parse("[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\n").unwrap();
    assert_eq!(c.endpoints[0].ws_deflate, None);
    let c = parse(
        "[[endpoint]]\nname = \"a\"\nurl = \"wss://h:1/\"\n[endpoint.ws]\ndeflate = true\n\
         client_no_context_takeover = true\nserver_max_window_bits = 10\n\
         client_max_window_bits = 15\n",
    )
    .unwrap();
    assert_eq!(
        c.endpoints[0].ws_deflate,
        Some(WsDeflate {
            client_no_context_takeover: true,
            server_no_context_takeover: false,
            client_max_window_bits: Some(15),
            server_max_window_bits: Some(10),
        })
    );
    let c = parse("[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\nws = { deflate = false }\n")
        .unwrap();
    assert_eq!(c.endpoints[0].ws_deflate, None);
}

#[test]
fn window_bits_outside_9_to_15_are_located() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\n[endpoint.ws]\ndeflate = true\n\
         server_max_window_bits = 8\n",
        6,
        26,
        "outside 9..=15",
    );
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\n[endpoint.ws]\ndeflate = true\n\
         client_max_window_bits = 16\n",
        6,
        26,
        "outside 9..=15",
    );
}

#[test]
fn deflate_keys_without_deflate_and_on_other_protocols_are_located() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\n[endpoint.ws]\n\
         server_no_context_takeover = true\n",
        5,
        30,
        "needs ws.deflate = true",
    );
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"http://h:1/\"\nws = { deflate = true }\n",
        4,
        6,
        "not ws or wss",
    );
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\n[endpoint.ws]\ndeflate = 1\n",
        5,
        11,
        "invalid type",
    );
}
