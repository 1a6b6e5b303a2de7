//! DHCPv6 codec against the `.hex` vectors: decoded fields, byte-exact round trips, and the
//! malformed twins of each vector (truncations, bad lengths, forbidden values).

mod dhcp_common;

use std::net::Ipv6Addr;

use dhcp_common::{VECTORS, edit_option, hex, opt, option_boundaries, vector};
use tandem_wire::Error;
use tandem_wire::codec::Writer;
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::option::DhcpOption;
use tandem_wire::dhcp::relay::{RelayChain, RelayMessage};
use tandem_wire::dhcp::{DuidType, IaNa, IaPd, MessageType, Packet, StatusCode};
use tandem_wire::option::{EmitOption, OptionCode, OptionIter, Options};

/// Emits `p` into a 0xa5-poisoned buffer of exactly `buffer_len()` and checks the shorter
/// buffer fails cleanly.
fn emit_exact(p: &Packet<'_>) -> Vec<u8> {
    let n = p.buffer_len();
    let mut buf = vec![0xa5; n];
    assert_eq!(p.emit(&mut buf), Ok(n));
    if n > 0 {
        let mut short = vec![0xa5; n - 1];
        assert_eq!(p.emit(&mut short), Err(Error::BufferTooSmall));
    }
    buf
}

/// Parses each option of `block` typed, re-emits it, and checks the bytes; recurses into the
/// nested blocks of IA options.
fn check_typed_block(block: &[u8]) {
    for raw in OptionIter::new(block) {
        let raw = raw.expect("parsed block is TLV-valid");
        let typed = DhcpOption::parse(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        assert_eq!(typed.code(), raw.code);
        assert_eq!(typed.data_len(), raw.data.len());
        let mut buf = vec![0xa5; typed.wire_len()];
        typed
            .emit(&mut Writer::new(&mut buf))
            .expect("exact buffer");
        assert_eq!(buf, opt(raw.code.0, raw.data), "{raw:?}");
        let nested = match typed {
            DhcpOption::IaNa(ia) => ia.options.raw(),
            DhcpOption::IaTa(ia) => ia.options.raw(),
            DhcpOption::IaPd(ia) => ia.options.raw(),
            DhcpOption::IaAddr(a) => a.options.raw(),
            DhcpOption::IaPrefix(p) => p.options.raw(),
            _ => None,
        };
        if let Some(nested) = nested {
            check_typed_block(nested.as_bytes());
        }
    }
}

#[test]
fn vectors_every_file_round_trips_byte_exact() {
    for (name, text) in VECTORS {
        let bytes = hex(text);
        let packet = Packet::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(emit_exact(&packet), bytes, "{name}");
        check_typed_block(packet.options().raw().unwrap().as_bytes());
    }
}

#[test]
fn vectors_every_truncation_fails_or_ends_on_option_boundary() {
    for (name, text) in VECTORS {
        let bytes = hex(text);
        let header = match Packet::parse(&bytes).unwrap() {
            Packet::Client(_) => Message::HEADER_LEN,
            Packet::Relay(_) => RelayMessage::HEADER_LEN,
        };
        let boundaries = option_boundaries(&bytes, header);
        for n in 0..bytes.len() {
            let cut = &bytes[..n];
            match Packet::parse(cut) {
                Ok(p) => {
                    assert!(boundaries.contains(&n), "{name}: cut at {n} parsed");
                    assert_eq!(emit_exact(&p), cut);
                }
                Err(e) => assert!(!boundaries.contains(&n), "{name}: cut at {n}: {e}"),
            }
            if bytes[0] == MessageType::RELAY_FORW.0 {
                assert!(
                    RelayChain::parse(cut).is_err(),
                    "{name}: chain cut at {n} parsed"
                );
            }
        }
    }
}

#[test]
fn dhclient_solicit_fields_decoded() {
    let bytes = vector("dhclient_solicit");
    let Packet::Client(m) = Packet::parse(&bytes).unwrap() else {
        panic!("not a client msg")
    };
    assert_eq!(m.msg_type, MessageType::SOLICIT);
    assert_eq!(m.transaction_id, 0x5a1b2c);
    let duid = m.client_id().unwrap().unwrap();
    assert_eq!(duid.duid_type(), DuidType::LLT);
    let llt = duid.llt().unwrap();
    assert_eq!((llt.hw_type, llt.time), (1, 0x2a6f1c3d));
    assert_eq!(llt.link_layer, [0x52, 0x54, 0x00, 0xa1, 0xb2, 0xc3]);
    assert_eq!(m.server_id(), Ok(None));
    let oro: Vec<_> = m.oro().unwrap().unwrap().iter().collect();
    assert_eq!(oro, [OptionCode::DNS_SERVERS, OptionCode::DOMAIN_LIST]);
    assert_eq!(m.elapsed_time(), Ok(Some(0)));
    assert!(!m.rapid_commit());
    let ias: Vec<IaNa<'_>> = m.ia_nas().map(Result::unwrap).collect();
    assert_eq!(ias.len(), 1);
    assert_eq!((ias[0].iaid, ias[0].t1, ias[0].t2), (0x00a1b2c3, 0, 0));
    assert_eq!(ias[0].addresses().count(), 0);
    assert_eq!(m.ia_pds().count(), 0);
    assert_eq!(m.count(OptionCode::CLIENTID), 1);
}

#[test]
fn dhcpcd_solicit_fields_decoded() {
    let bytes = vector("dhcpcd_solicit");
    let m = Message::parse(&bytes).unwrap();
    assert!(m.rapid_commit());
    assert_eq!(
        m.client_id().unwrap().unwrap().ll().unwrap().link_layer,
        [2, 0, 0xc0, 0xff, 0xee, 1]
    );
    let fqdn = m.client_fqdn().unwrap().unwrap();
    assert!(fqdn.s() && !fqdn.o() && !fqdn.n());
    assert!(!fqdn.name.is_fully_qualified());
    assert_eq!(fqdn.name.to_string(), "myhost");
    let pd: Vec<IaPd<'_>> = m.ia_pds().map(Result::unwrap).collect();
    assert_eq!(pd.len(), 1);
    let hint = pd[0].prefixes().next().unwrap().unwrap();
    assert_eq!(
        (hint.prefix_len, hint.prefix, hint.valid),
        (56, Ipv6Addr::UNSPECIFIED, 0)
    );
    let Some(DhcpOption::VendorClass(vc)) = m.typed(OptionCode::VENDOR_CLASS).unwrap() else {
        panic!("no vendor class")
    };
    assert_eq!(vc.enterprise, 40712);
    let items: Vec<_> = vc.data.iter().collect();
    assert_eq!(
        items,
        [&b"dhcpcd-9.4.1:Linux-6.1.0:x86_64:GenuineIntel"[..]]
    );
    assert!(m.oro().unwrap().unwrap().contains(OptionCode::SOL_MAX_RT));
}

#[test]
fn wide_solicit_fields_decoded() {
    let bytes = vector("wide_solicit");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.oro().unwrap().unwrap().len(), 1);
    let pd = m.ia_pds().next().unwrap().unwrap();
    assert_eq!((pd.iaid, pd.prefixes().count()), (0, 0));
    assert_eq!(m.ia_nas().count(), 0);
}

#[test]
fn rfc8415_reply_fields_decoded() {
    let bytes = vector("rfc8415_reply");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.msg_type, MessageType::REPLY);
    let en = m.server_id().unwrap().unwrap().en().unwrap();
    assert_eq!((en.enterprise, en.identifier), (2495, &b"tandem-a"[..]));
    let ias: Vec<IaNa<'_>> = m.ia_nas().map(Result::unwrap).collect();
    assert_eq!(ias.len(), 2);
    let addr = ias[0].addresses().next().unwrap().unwrap();
    assert_eq!(addr.addr, "2001:db8:1::1:a".parse::<Ipv6Addr>().unwrap());
    assert_eq!((addr.preferred, addr.valid), (3600, 7200));
    let st = addr.status().unwrap().unwrap();
    assert_eq!(
        (st.code, st.message_str()),
        (StatusCode::SUCCESS, Some("assigned"))
    );
    assert_eq!(
        ias[1].status().unwrap().unwrap().code,
        StatusCode::NO_ADDRS_AVAIL
    );
    let pfx = m
        .ia_pds()
        .next()
        .unwrap()
        .unwrap()
        .prefixes()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        (pfx.prefix_len, pfx.prefix),
        (56, "2001:db8:4200::".parse().unwrap())
    );
    let typed: Vec<DhcpOption<'_>> = m.typed_options().map(Result::unwrap).collect();
    assert!(typed.contains(&DhcpOption::Preference(255)));
    assert!(typed.contains(&DhcpOption::SolMaxRt(3600)));
    assert!(typed.contains(&DhcpOption::InformationRefreshTime(86400)));
    assert!(typed.contains(&DhcpOption::ReconfAccept));
    assert!(m.reconf_accept());
    let Some(DhcpOption::DnsServers(dns)) = m.typed(OptionCode::DNS_SERVERS).unwrap() else {
        panic!("no DNS servers")
    };
    let dns: Vec<_> = dns.iter().map(|a| a.to_string()).collect();
    assert_eq!(dns, ["2001:db8::53", "2001:db8::35"]);
    let Some(DhcpOption::DomainList(list)) = m.typed(OptionCode::DOMAIN_LIST).unwrap() else {
        panic!("no domain list")
    };
    let names: Vec<_> = list.iter().map(|n| n.to_string()).collect();
    assert_eq!(names, ["example.com.", "corp.example.com."]);
}

#[test]
fn info_request_unknown_and_failover_codes_stay_unknown() {
    let bytes = vector("rfc8415_info_request");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(
        m.client_id().unwrap().unwrap().uuid(),
        Some(core::array::from_fn(|i| i as u8))
    );
    for code in [OptionCode(0xfff0), OptionCode::F_EXPIRATION_TIME] {
        let Some(DhcpOption::Unknown(raw)) = m.typed(code).unwrap() else {
            panic!("{code:?}")
        };
        assert_eq!(raw.code, code);
    }
    let Some(DhcpOption::UserClass(uc)) = m.typed(OptionCode::USER_CLASS).unwrap() else {
        panic!("no user class")
    };
    assert_eq!(uc.iter().collect::<Vec<_>>(), [&b"lab"[..], b"printer"]);
    let Some(DhcpOption::VendorOpts(vo)) = m.typed(OptionCode::VENDOR_OPTS).unwrap() else {
        panic!("no vendor opts")
    };
    assert_eq!(vo.enterprise, 4491);
    assert_eq!(
        vo.options.raw().unwrap().find(OptionCode(1)).unwrap().data,
        b"x"
    );
    let Some(DhcpOption::Auth(auth)) = m.typed(OptionCode::AUTH).unwrap() else {
        panic!("no auth")
    };
    assert_eq!(
        (
            auth.protocol,
            auth.algorithm,
            auth.rdm,
            auth.replay_detection
        ),
        (3, 1, 0, 1)
    );
    assert_eq!(auth.info.len(), 17);
}

/// The dhclient SOLICIT with the first option `code` edited.
fn dhclient_with(code: OptionCode, edit: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let bytes = vector("dhclient_solicit");
    let mut out = bytes[..4].to_vec();
    out.extend(edit_option(&bytes[4..], code, edit));
    out
}

#[test]
fn twin_trailing_byte_in_elapsed_time_malformed() {
    let bytes = dhclient_with(OptionCode::ELAPSED_TIME, |d| [d, &[0]].concat());
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.elapsed_time(), Err(Error::Malformed("ELAPSED_TIME")));
    assert!(
        m.typed_options()
            .any(|o| o == Err(Error::Malformed("ELAPSED_TIME")))
    );
}

#[test]
fn twin_fixed_size_options_wrong_length_malformed() {
    let cases: [(u16, &[u8], &str); 10] = [
        (7, &[1, 2], "PREFERENCE"),
        (8, &[1], "ELAPSED_TIME"),
        (12, &[0; 15], "UNICAST"),
        (14, &[0], "RAPID_COMMIT"),
        (19, &[], "RECONF_MSG"),
        (20, &[1], "RECONF_ACCEPT"),
        (32, &[0; 5], "INFORMATION_REFRESH_TIME"),
        (82, &[0; 3], "SOL_MAX_RT"),
        (83, &[0; 8], "INF_MAX_RT"),
        (135, &[0; 3], "RELAY_SOURCE_PORT"),
    ];
    for (code, data, what) in cases {
        let raw = tandem_wire::option::RawOption {
            code: OptionCode(code),
            data,
        };
        assert_eq!(
            DhcpOption::parse(raw),
            Err(Error::Malformed(what)),
            "{what}"
        );
    }
}

#[test]
fn twin_option_length_past_end_bad_length() {
    let mut bytes = vector("dhclient_solicit");
    let last = bytes.len() - 1;
    // The IA_NA is last; its length field is 14 bytes from the end.
    bytes[last - 12] = 0x0d;
    assert_eq!(Message::parse(&bytes), Err(Error::BadLength("option")));
    let mut relay = vector("relay_forw_solicit");
    relay.pop();
    assert_eq!(Packet::parse(&relay), Err(Error::BadLength("option")));
}

#[test]
fn twin_odd_oro_malformed() {
    let bytes = dhclient_with(OptionCode::ORO, |d| [d, &[0]].concat());
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(
        m.oro().map(|o| o.map(|l| l.len())),
        Err(Error::Malformed("ORO"))
    );
    let ero = tandem_wire::option::RawOption {
        code: OptionCode::ERO,
        data: &[0, 1, 2],
    };
    assert_eq!(DhcpOption::parse(ero), Err(Error::Malformed("ERO")));
}

#[test]
fn twin_zero_length_and_131_byte_duid_rejected() {
    let empty = dhclient_with(OptionCode::CLIENTID, |_| Vec::new());
    assert_eq!(
        Message::parse(&empty).unwrap().client_id(),
        Err(Error::Truncated("DUID"))
    );
    let long = dhclient_with(OptionCode::CLIENTID, |d| {
        let mut v = d.to_vec();
        v.resize(131, 0x42);
        v
    });
    assert!(matches!(
        Message::parse(&long).unwrap().client_id(),
        Err(Error::Malformed(_))
    ));
    let max = dhclient_with(OptionCode::CLIENTID, |d| {
        let mut v = d.to_vec();
        v.resize(130, 0x42);
        v
    });
    assert_eq!(
        Message::parse(&max)
            .unwrap()
            .client_id()
            .unwrap()
            .unwrap()
            .len(),
        130
    );
}

#[test]
fn twin_prefix_len_129_malformed() {
    let bytes = vector("rfc8415_reply");
    let mut out = bytes[..4].to_vec();
    out.extend(edit_option(&bytes[4..], OptionCode::IA_PD, |d| {
        let mut v = d.to_vec();
        // IA_PD fixed part 12, IAPREFIX header 4, lifetimes 8: the prefix length.
        v[12 + 4 + 8] = 129;
        v
    }));
    let m = Message::parse(&out).unwrap();
    let pd = m.ia_pds().next().unwrap().unwrap();
    assert!(matches!(
        pd.prefixes().next().unwrap(),
        Err(Error::Malformed(_))
    ));
    assert!(
        m.typed_options().all(|o| o.is_ok()),
        "IA_PD itself only checks nested TLVs"
    );
}

#[test]
fn twin_nested_tlv_past_end_in_ia_na_rejected() {
    let bytes = vector("rfc8415_reply");
    let mut out = bytes[..4].to_vec();
    out.extend(edit_option(&bytes[4..], OptionCode::IA_NA, |d| {
        let mut v = d.to_vec();
        v[12 + 3] += 1; // IAADDR length one past the IA_NA's end
        v
    }));
    let m = Message::parse(&out).unwrap();
    assert_eq!(m.ia_nas().next().unwrap(), Err(Error::BadLength("option")));
}

#[test]
fn twin_bad_domain_names_rejected() {
    let unterminated = tandem_wire::option::RawOption {
        code: OptionCode::DOMAIN_LIST,
        data: b"\x03com",
    };
    assert!(matches!(
        DhcpOption::parse(unterminated),
        Err(Error::Malformed(_))
    ));
    let pointer = tandem_wire::option::RawOption {
        code: OptionCode::CLIENT_FQDN,
        data: &[0, 0xc0, 12],
    };
    assert!(matches!(
        DhcpOption::parse(pointer),
        Err(Error::Malformed(_))
    ));
    let no_flags = tandem_wire::option::RawOption {
        code: OptionCode::CLIENT_FQDN,
        data: &[],
    };
    assert_eq!(
        DhcpOption::parse(no_flags),
        Err(Error::Malformed("CLIENT_FQDN"))
    );
    let bad_uc = tandem_wire::option::RawOption {
        code: OptionCode::USER_CLASS,
        data: &[0, 5, 1],
    };
    assert_eq!(
        DhcpOption::parse(bad_uc),
        Err(Error::Malformed("USER_CLASS"))
    );
    let sub = tandem_wire::option::RawOption {
        code: OptionCode::SUBSCRIBER_ID,
        data: &[],
    };
    assert_eq!(
        DhcpOption::parse(sub),
        Err(Error::Malformed("SUBSCRIBER_ID"))
    );
}

#[test]
fn message_relay_types_refused_by_client_parser() {
    let relay = vector("relay_forw_solicit");
    assert!(matches!(Message::parse(&relay), Err(Error::Malformed(_))));
    let client = vector("dhclient_solicit");
    assert!(matches!(
        RelayMessage::parse(&client),
        Err(Error::Malformed(_))
    ));
    assert_eq!(Packet::parse(&[]), Err(Error::Truncated("message header")));
    // An unassigned or failover type is still a well-formed client/server header.
    let bndupd = Message::parse(&[24, 0, 0, 1]).unwrap();
    assert_eq!(bndupd.msg_type, MessageType::BNDUPD);
}

#[test]
fn message_duplicate_singleton_first_returned_and_counted() {
    let mut bytes = vector("dhclient_solicit");
    bytes.extend(opt(8, &[0, 9]));
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.elapsed_time(), Ok(Some(0)));
    assert_eq!(m.count(OptionCode::ELAPSED_TIME), 2);
    assert_eq!(
        m.options_with(OptionCode::ELAPSED_TIME)
            .nth(1)
            .unwrap()
            .data,
        [0, 9]
    );
}

#[test]
fn message_built_from_typed_options_matches_vector() {
    // Rebuild the dhclient vector from typed options.
    let bytes = vector("dhclient_solicit");
    let parsed = Message::parse(&bytes).unwrap();
    let duid = parsed.client_id().unwrap().unwrap();
    let oro_codes = [OptionCode::DNS_SERVERS, OptionCode::DOMAIN_LIST];
    let client_id = DhcpOption::ClientId(duid);
    let oro = DhcpOption::Oro(tandem_wire::dhcp::option::CodeList::List(&oro_codes));
    let elapsed = DhcpOption::ElapsedTime(0);
    let ia = IaNa {
        iaid: 0x00a1b2c3,
        t1: 0,
        t2: 0,
        options: Options::default(),
    };
    let list: [&dyn EmitOption; 4] = [&client_id, &oro, &elapsed, &ia];
    let built = Message {
        msg_type: MessageType::SOLICIT,
        transaction_id: 0x5a1b2c,
        options: Options::List(&list),
    };
    assert_eq!(emit_exact(&Packet::Client(built)), bytes);
    assert_eq!(built, parsed);
}

#[test]
fn message_emit_rejects_out_of_range_header() {
    let mut buf = [0; 8];
    let big = Message {
        msg_type: MessageType::REPLY,
        transaction_id: 0x0100_0000,
        options: Options::default(),
    };
    assert!(matches!(big.emit(&mut buf), Err(Error::Malformed(_))));
    let relay = Message {
        msg_type: MessageType::RELAY_REPL,
        transaction_id: 1,
        options: Options::default(),
    };
    assert!(matches!(relay.emit(&mut buf), Err(Error::Malformed(_))));
}

#[test]
fn vectors_every_dhcp_file_is_listed() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name
            .strip_prefix("dhcp_")
            .and_then(|n| n.strip_suffix(".hex"))
        {
            assert!(
                VECTORS.iter().any(|(n, _)| *n == stem),
                "{name} is not in dhcp_common::VECTORS, so no test reads it"
            );
        }
    }
}

#[test]
fn captured_client_solicits_decode_as_the_clients_sent_them() {
    let codes = |name: &str| -> (MessageType, Vec<OptionCode>) {
        let bytes = vector(name);
        let msg = Message::parse(&bytes).unwrap();
        let codes = msg.options.raw().unwrap().iter().map(|o| o.code).collect();
        assert!(msg.client_id().unwrap().is_some(), "{name}: no Client ID");
        (msg.msg_type, codes)
    };
    use OptionCode as C;
    assert_eq!(
        codes("capture_dhclient_solicit"),
        (
            MessageType::SOLICIT,
            vec![C::CLIENTID, C::ORO, C::ELAPSED_TIME, C::IA_NA]
        )
    );
    assert_eq!(
        codes("capture_dhclient_pd_solicit"),
        (
            MessageType::SOLICIT,
            vec![C::CLIENTID, C::ORO, C::ELAPSED_TIME, C::IA_PD]
        )
    );
    assert_eq!(
        codes("capture_dhclient_info_request"),
        (
            MessageType::INFORMATION_REQUEST,
            vec![C::CLIENTID, C::ORO, C::ELAPSED_TIME]
        )
    );
    let (t, dhcpcd) = codes("capture_dhcpcd_solicit");
    assert_eq!(t, MessageType::SOLICIT);
    assert!(
        dhcpcd.contains(&C::IA_NA)
            && dhcpcd.contains(&C::IA_PD)
            && dhcpcd.contains(&C::VENDOR_CLASS)
    );
    let (t, wide) = codes("capture_wide_dhcp6c_solicit");
    assert_eq!(t, MessageType::SOLICIT);
    assert!(
        wide.contains(&C::RAPID_COMMIT) && wide.contains(&C::IA_NA) && wide.contains(&C::IA_PD)
    );
}
