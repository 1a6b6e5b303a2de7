//! Fuzz target: one DHCPv6 message (client/server or relay).
//!
//! Parse as a `Packet`; if it parses, emitting into a buffer of exactly `buffer_len()` must
//! give the input back byte for byte (option blocks are kept raw), parsing the output must give
//! an equal `Packet`, and every top-level option that decodes typed must re-emit its own bytes.
#![no_main]

use tandem_wire::codec::Writer;
use tandem_wire::dhcp::Packet;
use tandem_wire::dhcp::option::DhcpOption;
use tandem_wire::option::{EmitOption, OptionIter};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::parse(data) else {
        return;
    };
    let len = packet.buffer_len();
    assert_eq!(len, data.len());
    let mut out = vec![0xa5u8; len];
    assert_eq!(packet.emit(&mut out), Ok(len));
    assert_eq!(out, data);
    if len > 0 {
        let mut short = vec![0xa5u8; len - 1];
        assert!(packet.emit(&mut short).is_err());
    }
    assert_eq!(Packet::parse(&out), Ok(packet));

    let Some(block) = packet.options().raw() else {
        return;
    };
    for raw in OptionIter::new(block.as_bytes()) {
        let raw = raw.expect("a parsed block is TLV-valid");
        let Ok(typed) = DhcpOption::parse(raw) else {
            continue;
        };
        assert_eq!(typed.code(), raw.code);
        assert_eq!(typed.wire_len(), raw.wire_len());
        let mut buf = vec![0xa5u8; typed.wire_len()];
        typed
            .emit(&mut Writer::new(&mut buf))
            .expect("exact buffer");
        assert_eq!(&buf[4..], raw.data);
        assert_eq!(buf[..2], raw.code.0.to_be_bytes());
    }
});
