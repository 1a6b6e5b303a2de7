//! Whole Ethernet / VLAN / IPv6 / UDP frames: `Frame::parse` never panics; whatever parses is
//! internally consistent, and the reply built for it with `FrameRepr::reply_to` into an
//! exact-size buffer parses back to the same fields with a correct UDP checksum.
//!
//! Built with `tandem-wire/fuzzing`, so `Frame::parse` does not verify checksums (random
//! inputs reach the UDP layer); the reply's checksum is checked explicitly with
//! `udp::verify_checksum`, which always verifies.
#![no_main]

use core::net::Ipv6Addr;

use tandem_wire::Error;
use tandem_wire::frame::ethernet::EthernetAddress;
use tandem_wire::frame::{Frame, FrameRepr, build_udp_frame, udp};

const OUR_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const OUR_IP: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(rx) = Frame::parse(data) else { return };

    // The parsed view agrees with the bytes it came from.
    assert!(rx.frame_len() <= data.len());
    assert_eq!(
        rx.payload().len() + udp::HEADER_LEN,
        usize::from(rx.udp().length)
    );
    assert_eq!(&data[rx.payload_offset()..rx.frame_len()], rx.payload());
    assert_eq!(rx.ipv6_offset(), 14 + 4 * rx.vlans().len());
    assert!(rx.udp_offset() >= rx.ipv6_offset() + 40);

    // A reply with the same payload, into a buffer of exactly the right size.
    let repr = FrameRepr::reply_to(&rx, OUR_MAC, OUR_IP);
    let payload = rx.payload();
    let mut out = vec![0xa5; repr.buffer_len(payload.len())];
    let n = build_udp_frame(&repr, payload, &mut out).expect("exact-size buffer must suffice");
    assert_eq!(n, out.len());

    let tx = Frame::parse(&out).expect("the reply must parse");
    assert_eq!(FrameRepr::from(&tx), repr);
    assert_eq!(tx.payload(), payload);
    assert_eq!(
        (tx.src_port(), tx.dst_port()),
        (rx.dst_port(), rx.src_port())
    );
    assert_eq!(tx.vlans(), rx.vlans());
    assert_eq!(tx.frame_len(), n);
    let udp_bytes = &out[tx.udp_offset()..];
    assert_eq!(
        udp::verify_checksum(&repr.src_ip, &repr.dst_ip, udp_bytes),
        Ok(())
    );
    assert_eq!(
        udp::checksum(&repr.src_ip, &repr.dst_ip, udp_bytes),
        tx.udp().checksum
    );

    // One byte short is refused without writing.
    let mut short = vec![0xa5; n - 1];
    assert_eq!(
        build_udp_frame(&repr, payload, &mut short),
        Err(Error::BufferTooSmall)
    );
    assert!(short.iter().all(|&b| b == 0xa5));
});
