//! The RFC 8156 Wireshark dissector (`contrib/wireshark/dhcpv6_failover.lua`) against real TCP:
//! every failover message vector of `tandem-wire` is sent over a TCP connection to port 647
//! in a fresh network namespace (one frame per segment, two per segment, one split over two
//! segments), captured with tcpdump, and dissected by tshark with the Lua dissector. The valid
//! stream must decode every message type with no malformed or unknown field and no Lua error;
//! a second stream of deliberately broken frames must be flagged, so the check can fail.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use tandem_hwtest::capture::{self, Capture, FLAGGED, tshark_fields};
use tandem_hwtest::{NetNs, STRICT_ENV, require_privileges};

fn repo() -> PathBuf {
    capture::repo_root()
}

/// The bytes of a `.hex` vector file (`#` starts a comment).
fn vector(path: &Path) -> Vec<u8> {
    let text = fs::read_to_string(path).expect("vector file");
    let digits: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digits"))
        .collect()
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(msg.len())
        .expect("vector under 64 KiB")
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(msg);
    v
}

/// Sends each chunk as its own write, with a pause so each lands in its own segment.
fn send_chunks(chunks: &[Vec<u8>]) -> std::io::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 647)))?;
    let reader = thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        let mut sink = Vec::new();
        s.read_to_end(&mut sink)?;
        Ok(())
    });
    let mut c = TcpStream::connect(SocketAddr::from((Ipv6Addr::LOCALHOST, 647)))?;
    c.set_nodelay(true)?;
    for chunk in chunks {
        c.write_all(chunk)?;
        thread::sleep(Duration::from_millis(20));
    }
    drop(c);
    reader.join().expect("reader thread")
}

#[test]
fn netns_wireshark_dissector_decodes_every_failover_message_and_flags_broken_ones() {
    require_privileges!();
    for tool in ["tshark", "tcpdump"] {
        if !capture::have(tool) {
            assert!(
                std::env::var_os(STRICT_ENV).is_none(),
                "{tool} is not installed: run `bash .ci/install`"
            );
            eprintln!("SKIPPED: {tool} is not installed (bash .ci/install)");
            return;
        }
    }
    let ns = NetNs::new("tandem-ws").expect("netns");
    ns.ip(&["link", "set", "lo", "up"]).expect("lo up");
    let pcap = capture::capture_dir("ws")
        .expect("capture dir")
        .join("failover.pcap");
    let dump = Capture::start(&ns, "lo", &pcap, &["tcp", "port", "647"]).expect("tcpdump");

    let mut files: Vec<PathBuf> = fs::read_dir(repo().join("userspace/wire/tests/vectors"))
        .expect("vectors")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("failover_") && n.ends_with(".hex"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 14, "{files:?}");
    let mut valid: Vec<Vec<u8>> = files.iter().map(|f| framed(&vector(f))).collect();
    // Two messages in one segment; one message split over two segments.
    let first = valid[0].clone();
    valid.push([first.clone(), first.clone()].concat());
    valid.push(first[..5].to_vec());
    valid.push(first[5..].to_vec());
    ns.run(|| send_chunks(&valid)).expect("valid stream");

    // Stream 1: a CONTACT with an option running past the message, a STATE with an unknown
    // option, a message type no RFC defines, and a STATE whose SERVER_STATE has 2 octets.
    let broken = vec![
        framed(&[35, 0, 0, 1, 0, 0, 0, 9, 0, 0x84, 0, 9, 2]),
        framed(&[34, 0, 0, 2, 0, 0, 0, 9, 0x27, 0x0f, 0, 1, 0]),
        framed(&[99, 0, 0, 3, 0, 0, 0, 9]),
        framed(&[34, 0, 0, 4, 0, 0, 0, 9, 0, 0x84, 0, 2, 0, 2]),
    ];
    ns.run(|| send_chunks(&broken)).expect("broken stream");
    let said = dump.stop().expect("tcpdump stops");
    let size = fs::metadata(&pcap).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 1000,
        "capture has {size} bytes; tcpdump said: {said}"
    );

    // Stream 0: every vector's message type, nothing flagged.
    let types = tshark_fields(&pcap, "tcp.stream == 0 && dhcpv6fo", &["dhcpv6fo.msg_type"]);
    let mut seen: Vec<u32> = types
        .lines()
        .flat_map(|l| l.split(','))
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen,
        [7, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35]
    );
    let count = types
        .lines()
        .flat_map(|l| l.split(','))
        .filter(|t| !t.trim().is_empty())
        .count();
    assert_eq!(
        count,
        files.len() + 3,
        "every message, incl. reassembled ones"
    );
    let flagged = tshark_fields(
        &pcap,
        &format!("tcp.stream == 0 && ({FLAGGED})"),
        &["frame.number", "_ws.expert.message"],
    );
    assert!(
        flagged.trim().is_empty(),
        "valid vectors flagged:\n{flagged}"
    );

    // Stream 1: each broken frame flagged.
    let malformed = tshark_fields(
        &pcap,
        "tcp.stream == 1 && dhcpv6fo.malformed",
        &["dhcpv6fo.xid"],
    );
    let unknown = tshark_fields(
        &pcap,
        "tcp.stream == 1 && dhcpv6fo.unknown",
        &["dhcpv6fo.xid"],
    );
    let xids = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .lines()
            .flat_map(|l| l.split(','))
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(xids(&malformed), ["0x000001", "0x000004"], "{malformed}");
    assert_eq!(xids(&unknown), ["0x000002", "0x000003"], "{unknown}");
}
