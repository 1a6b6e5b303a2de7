//! Fuzz target: relay chains (RFC 8415 §19).
//!
//! Parse a `RelayChain`; if it parses, wrap a REPLY in the mirrored RELAY-REPL chain, emit it
//! into a buffer of exactly `reply_len()`, parse it back as a chain, and check the level count,
//! the copied hop-count / link-address / peer-address, the echoed Interface-Id and the reply.
#![no_main]

use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::relay::RelayChain;
use tandem_wire::dhcp::{MessageType, StatusCode, StatusCodeOption};
use tandem_wire::option::{EmitOption, Options};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(chain) = RelayChain::parse(data) else {
        return;
    };
    assert!(!chain.levels().is_empty());
    let inner = chain.inner();
    let status = StatusCodeOption::new(StatusCode::SUCCESS, "fuzz");
    let list = [&status as &dyn EmitOption];
    let reply = Message {
        msg_type: MessageType::REPLY,
        transaction_id: inner.transaction_id,
        options: Options::List(&list),
    };
    let len = chain.reply_len(&reply);
    let mut out = vec![0xa5u8; len];
    match chain.emit_reply(&reply, &mut out) {
        Ok(n) => assert_eq!(n, len),
        // A level's payload can exceed 65535 bytes only if the input was near that size.
        Err(_) => {
            assert!(len > 65535);
            return;
        }
    }
    let back = RelayChain::parse(&out).expect("emitted chain parses");
    assert_eq!(back.levels().len(), chain.levels().len());
    for (a, b) in chain.levels().iter().zip(back.levels()) {
        assert_eq!(b.msg_type, MessageType::RELAY_REPL);
        assert_eq!(a.hop_count, b.hop_count);
        assert_eq!(a.link_address, b.link_address);
        assert_eq!(a.peer_address, b.peer_address);
        assert_eq!(a.interface_id(), b.interface_id());
    }
    assert_eq!(back.inner(), reply);
    assert_eq!(
        back.innermost_link_address(),
        chain.innermost_link_address()
    );
});
