//! The gateway's endpoint keys.

use super::*;

#[test]
fn publish_options_are_bounded() {
    let ws = "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\n";
    let c = parse(ws).unwrap();
    assert_eq!(c.endpoints[0].publish_options, PublishOptions::default());
    let c = parse(&format!(
        "{ws}publish_max_message = 65536\npublish_buffer = 4096\npublish_overflow = \"drop_newest\"\n"
    ))
    .unwrap();
    let o = c.endpoints[0].publish_options;
    assert_eq!(
        (o.max_message, o.buffer, o.overflow),
        (65536, 4096, PublishOverflow::DropNewest)
    );
    fails_at(
        &format!("{ws}publish_max_message = 1\n"),
        4,
        23,
        "publish_max_message must be",
    );
    fails_at(
        &format!("{ws}publish_buffer = 100000\n"),
        4,
        18,
        "publish_buffer must be",
    );
    fails_at(
        &format!("{ws}publish_overflow = \"block\"\n"),
        4,
        20,
        "unknown publish_overflow",
    );
}
