//! Fuzz smoke support: seeding the cargo-fuzz corpora from the wire test vectors, and showing
//! crash inputs as hex.
//!
//! Vector files (`userspace/wire/tests/vectors/*.hex`) are text: `#` starts a comment that runs
//! to the end of the line (`# provenance: ...`), everything else is hex digits, possibly split
//! by whitespace. Each file holds one DHCPv6 message, failover message or frame, and goes to the
//! targets that can use it:
//!
//! * `failover*` files → `failover_msg`, `failover_stream` (which also gets all of them
//!   concatenated, as one TCP stream); the BNDUPD and BNDREPLY ones (`failover_bnd*`) also →
//!   `failover_bndupd`, behind its clock byte (0);
//! * `frame*` files → `wire_frame`;
//! * every other file is a DHCPv6 message → `wire_msg`, `wire_relay`, `wire_frame` wrapped in an
//!   Ethernet + IPv6 + UDP (546 → 547, to ff02::1:2) frame with a valid UDP checksum, and
//!   `proto_request` as one raw-datagram step (plus all of them as one sequence of steps).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

/// The fuzz project, relative to the workspace root.
pub(crate) const FUZZ_DIR: &str = "userspace/fuzz";
/// The test vectors, relative to the workspace root.
pub(crate) const VECTOR_DIR: &str = "userspace/wire/tests/vectors";

/// Parses a vector file's text into bytes.
pub(crate) fn parse_hex(text: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut high: Option<u8> = None;
    for (index, line) in text.lines().enumerate() {
        let data = line.split_once('#').map_or(line, |(data, _comment)| data);
        for ch in data.chars().filter(|c| !c.is_whitespace()) {
            let Some(nibble) = ch.to_digit(16) else {
                bail!(
                    "line {}: `{ch}` is neither a hex digit, whitespace nor a `#` comment",
                    index + 1
                );
            };
            // to_digit(16) < 16, so the cast is lossless.
            let nibble = nibble as u8;
            match high.take() {
                None => high = Some(nibble),
                Some(h) => bytes.push(h << 4 | nibble),
            }
        }
    }
    if high.is_some() {
        bail!("odd number of hex digits");
    }
    Ok(bytes)
}

/// The step opcode of a raw datagram in the `proto_request` input format (`RAW_OP` in
/// userspace/fuzz/src/engine.rs): `[RAW_OP, len_hi, len_lo, bytes...]`.
const ENGINE_RAW_OP: u8 = 0;

/// A DHCPv6 message as one `proto_request` step; `None` if its length does not fit the step's
/// length field (the harness takes it mod 1500).
fn engine_step(message: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(message.len()).ok().filter(|&l| l < 1500)?;
    let mut step = vec![ENGINE_RAW_OP];
    step.extend_from_slice(&len.to_be_bytes());
    step.extend_from_slice(message);
    Some(step)
}

/// What a vector file is, judged by its file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VectorKind {
    Dhcp,
    Failover,
    Frame,
}

impl VectorKind {
    fn of(stem: &str) -> Self {
        if stem.starts_with("failover") {
            Self::Failover
        } else if stem.starts_with("frame") {
            Self::Frame
        } else {
            Self::Dhcp
        }
    }
}

/// One corpus file to write: `corpus/<target>/<name>`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Seed {
    pub(crate) target: &'static str,
    pub(crate) name: String,
    pub(crate) data: Vec<u8>,
}

/// Decides which corpus files the given vectors (`(file stem, bytes)`, sorted by stem) make.
pub(crate) fn plan_seeds(vectors: &[(String, Vec<u8>)]) -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut stream = Vec::new();
    let mut steps = Vec::new();
    let mut seed = |target, name: String, data: Vec<u8>| seeds.push(Seed { target, name, data });
    for (stem, data) in vectors {
        let name = format!("vec-{stem}");
        match VectorKind::of(stem) {
            VectorKind::Failover => {
                stream.extend_from_slice(data);
                seed("failover_msg", name.clone(), data.clone());
                if stem.starts_with("failover_bnd") {
                    // The target's first byte picks its clock.
                    let input = [&[0u8][..], data].concat();
                    seed("failover_bndupd", name.clone(), input);
                }
                seed("failover_stream", name, data.clone());
            }
            VectorKind::Frame => seed("wire_frame", name, data.clone()),
            VectorKind::Dhcp => {
                seed("wire_msg", name.clone(), data.clone());
                seed("wire_relay", name.clone(), data.clone());
                if let Some(frame) = udp_frame(data) {
                    seed("wire_frame", format!("{name}-udp"), frame);
                }
                if let Some(step) = engine_step(data) {
                    steps.extend_from_slice(&step);
                    seed("proto_request", name, step);
                }
            }
        }
    }
    if !stream.is_empty() {
        seed(
            "failover_stream",
            "vec-all-failover-stream".to_owned(),
            stream,
        );
    }
    if !steps.is_empty() {
        seed("proto_request", "vec-all-dhcp-steps".to_owned(), steps);
    }
    seeds
}

/// Reads every `*.hex` vector under `dir`, sorted by file name.
fn read_vectors(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "hex"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let data = parse_hex(&text).with_context(|| format!("{}", path.display()))?;
            Ok((stem, data))
        })
        .collect()
}

/// Writes the seeds for `targets` into `<root>/userspace/fuzz/corpus/<target>/` (existing corpus
/// files are kept; seeds are overwritten). Returns a one-line summary.
pub(crate) fn seed(root: &Path, targets: &[String]) -> Result<String> {
    let vector_dir = root.join(VECTOR_DIR);
    if !vector_dir.is_dir() {
        return Ok(format!("no vectors in {VECTOR_DIR}; corpora start empty"));
    }
    let vectors = read_vectors(&vector_dir)?;
    let mut written = 0usize;
    let mut used = BTreeSet::new();
    for seed in plan_seeds(&vectors) {
        if !targets.iter().any(|t| t == seed.target) {
            continue;
        }
        let dir = root.join(FUZZ_DIR).join("corpus").join(seed.target);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(&seed.name);
        std::fs::write(&path, &seed.data)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written += 1;
        used.insert(seed.target);
    }
    let used: Vec<_> = used.into_iter().collect();
    Ok(format!(
        "{} vectors -> {written} corpus files for {}",
        vectors.len(),
        if used.is_empty() {
            "no target".to_owned()
        } else {
            used.join(", ")
        }
    ))
}

/// Files in `<root>/userspace/fuzz/artifacts/<target>/` (crash, leak, timeout, oom inputs).
pub(crate) fn artifacts(root: &Path, target: &str) -> BTreeSet<PathBuf> {
    let dir = root.join(FUZZ_DIR).join("artifacts").join(target);
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// `path: <hex>` for a crash input (first 4 KiB).
pub(crate) fn describe_artifact(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(data) => {
            let shown = data.get(..4096).unwrap_or(&data);
            let mut hex = String::with_capacity(shown.len() * 2);
            for byte in shown {
                let _ = write!(hex, "{byte:02x}");
            }
            let more = if shown.len() < data.len() { "..." } else { "" };
            format!("{} ({} bytes): {hex}{more}", path.display(), data.len())
        }
        Err(err) => format!("{}: cannot read: {err}", path.display()),
    }
}

/// Wraps a DHCPv6 message in Ethernet + IPv6 + UDP, client → All_DHCP_Relay_Agents_and_Servers
/// (RFC 8415 §7.1), with a correct UDP checksum (RFC 8200 §8.1). `None` if it cannot fit a
/// UDP length.
fn udp_frame(payload: &[u8]) -> Option<Vec<u8>> {
    const SRC: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DST: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2];
    let udp_len = u16::try_from(payload.len().checked_add(8)?).ok()?;
    let mut frame = Vec::with_capacity(14 + 40 + usize::from(udp_len));
    frame.extend_from_slice(&[0x33, 0x33, 0x00, 0x01, 0x00, 0x02]); // dst MAC for ff02::1:2
    frame.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0x01]); // src MAC
    frame.extend_from_slice(&0x86dd_u16.to_be_bytes());
    frame.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class 0, flow label 0
    frame.extend_from_slice(&udp_len.to_be_bytes());
    frame.extend_from_slice(&[17, 1]); // next header UDP, hop limit 1
    frame.extend_from_slice(&SRC);
    frame.extend_from_slice(&DST);
    frame.extend_from_slice(&546_u16.to_be_bytes());
    frame.extend_from_slice(&547_u16.to_be_bytes());
    frame.extend_from_slice(&udp_len.to_be_bytes());
    let checksum = udp_checksum(&SRC, &DST, udp_len, payload);
    frame.extend_from_slice(&checksum.to_be_bytes());
    frame.extend_from_slice(payload);
    Some(frame)
}

/// UDP-over-IPv6 checksum of a datagram whose checksum field is zero.
fn udp_checksum(src: &[u8; 16], dst: &[u8; 16], udp_len: u16, payload: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = pair.first().copied().unwrap_or(0);
            let lo = pair.get(1).copied().unwrap_or(0);
            sum += u64::from(u16::from_be_bytes([hi, lo]));
        }
    };
    add(src);
    add(dst);
    add(&u32::from(udp_len).to_be_bytes());
    add(&[0, 0, 0, 17]);
    add(&546_u16.to_be_bytes());
    add(&547_u16.to_be_bytes());
    add(&udp_len.to_be_bytes());
    add(payload);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves sum <= 0xffff.
    let folded = !(sum as u16);
    // RFC 8200 §8.1: a computed checksum of zero is sent as 0xffff.
    if folded == 0 { 0xffff } else { folded }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_hex_with_comments_and_spacing_gives_bytes() {
        let text = "# provenance: RFC 8415 §8\n01 00 00 2a  # SOLICIT, xid 42\n\n00010\n00e\n";
        assert_eq!(
            parse_hex(text).unwrap(),
            [0x01, 0x00, 0x00, 0x2a, 0x00, 0x01, 0x00, 0x0e]
        );
    }

    #[test]
    fn parse_hex_uppercase_and_tabs_are_accepted() {
        assert_eq!(parse_hex("\tAB\tcD\r\n").unwrap(), [0xab, 0xcd]);
    }

    #[test]
    fn parse_hex_odd_digit_count_is_rejected() {
        let err = parse_hex("abc").unwrap_err();
        assert!(err.to_string().contains("odd"), "{err}");
    }

    #[test]
    fn parse_hex_non_hex_character_names_the_line() {
        let err = parse_hex("00\n0x01\n").unwrap_err();
        assert!(err.to_string().starts_with("line 2: `x`"), "{err}");
    }

    #[test]
    fn plan_seeds_sends_each_kind_to_its_targets() {
        let vectors = vec![
            ("failover_bndupd".to_owned(), vec![0x01, 0x02]),
            ("failover_connect".to_owned(), vec![0x03]),
            ("frame_vlan".to_owned(), vec![0xee]),
            ("solicit".to_owned(), vec![0x01, 0, 0, 1]),
        ];
        let seeds = plan_seeds(&vectors);
        let names: Vec<_> = seeds.iter().map(|s| (s.target, s.name.as_str())).collect();
        assert_eq!(
            names,
            [
                ("failover_msg", "vec-failover_bndupd"),
                ("failover_bndupd", "vec-failover_bndupd"),
                ("failover_stream", "vec-failover_bndupd"),
                ("failover_msg", "vec-failover_connect"),
                ("failover_stream", "vec-failover_connect"),
                ("wire_frame", "vec-frame_vlan"),
                ("wire_msg", "vec-solicit"),
                ("wire_relay", "vec-solicit"),
                ("wire_frame", "vec-solicit-udp"),
                ("proto_request", "vec-solicit"),
                ("failover_stream", "vec-all-failover-stream"),
                ("proto_request", "vec-all-dhcp-steps"),
            ]
        );
        assert_eq!(seeds[1].data, [0x00, 0x01, 0x02]);
        assert_eq!(seeds[9].data, [0x00, 0x00, 0x04, 0x01, 0, 0, 1]);
        assert_eq!(seeds[10].data, [0x01, 0x02, 0x03]);
    }

    #[test]
    fn udp_frame_has_lengths_and_valid_checksum() {
        let payload = [0x01, 0x12, 0x34, 0x56, 0x00];
        let frame = udp_frame(&payload).unwrap();
        assert_eq!(frame.len(), 14 + 40 + 8 + payload.len());
        assert_eq!(frame[12..14], [0x86, 0xdd]);
        assert_eq!(frame[18..20], 13_u16.to_be_bytes()); // IPv6 payload length
        assert_eq!(frame[58..60], 13_u16.to_be_bytes()); // UDP length
        assert_eq!(&frame[62..], &payload);
        // Summing the pseudo-header and the datagram including its checksum gives 0xffff.
        let udp = &frame[54..];
        let mut sum: u32 = 0;
        for chunk in frame[22..54].chunks(2).chain(udp.chunks(2)) {
            sum += u32::from(u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]));
        }
        sum += 13 + 17;
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn engine_step_is_a_raw_datagram_step_below_1500_bytes() {
        assert_eq!(
            engine_step(&[0xab; 3]).unwrap(),
            [0, 0, 3, 0xab, 0xab, 0xab]
        );
        assert_eq!(engine_step(&[0; 1499]).unwrap()[..3], [0, 0x05, 0xdb]);
        assert!(engine_step(&[0; 1500]).is_none());
    }

    #[test]
    fn udp_frame_oversized_payload_is_refused() {
        assert!(udp_frame(&vec![0; 65_528]).is_none());
        assert!(udp_frame(&vec![0; 65_527]).is_some());
    }

    #[test]
    fn seed_writes_corpus_files_for_listed_targets_only() {
        let root = std::env::temp_dir().join(format!("xtask-seed-{}", std::process::id()));
        let vectors = root.join(VECTOR_DIR);
        std::fs::create_dir_all(&vectors).unwrap();
        std::fs::write(
            vectors.join("solicit.hex"),
            "# provenance: test\n01 000001\n",
        )
        .unwrap();
        std::fs::write(vectors.join("notes.txt"), "not a vector").unwrap();
        let summary = seed(&root, &["wire_msg".to_owned()]).unwrap();
        let written = std::fs::read(root.join(FUZZ_DIR).join("corpus/wire_msg/vec-solicit"));
        let relay_dir = root.join(FUZZ_DIR).join("corpus/wire_relay");
        let relay_exists = relay_dir.exists();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(written.unwrap(), [0x01, 0x00, 0x00, 0x01]);
        assert!(!relay_exists);
        assert_eq!(summary, "1 vectors -> 1 corpus files for wire_msg");
    }

    #[test]
    fn describe_artifact_shows_size_and_hex() {
        let path = std::env::temp_dir().join(format!("xtask-artifact-{}", std::process::id()));
        std::fs::write(&path, [0xde, 0xad, 0x01]).unwrap();
        let shown = describe_artifact(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(shown.ends_with("(3 bytes): dead01"), "{shown}");
    }
}
