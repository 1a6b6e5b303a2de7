//! The resynchronisation of issue 9 at a CI size (`tandem_hwtest::resync`; the benchmark is
//! `bench`'s `resync`, bench/README.md): a primary `tandem run` whose state directory holds
//! 20 000 ACTIVE bindings (IA_NA and IA_PD, written with the store API, two shards), a
//! secondary with an empty state directory (a lost disk) in another namespace over a veth,
//! mutual TLS. The secondary starts in RECOVER (docs/failover.md D8), sends UPDREQALL, the
//! primary streams every binding as BNDUPD, and UPDDONE moves the secondary to RECOVER-WAIT
//! (RFC 8156 §8.5.2, §8.6). Checked: UPDDONE comes, every binding arrives and was accepted,
//! each in the shard of its client (D26), both tables agree binding by binding, and
//! `tandem leases --json` lists them all. Timings are printed, never asserted.

use std::path::Path;
use std::time::Duration;

use tandem_hwtest::require_privileges;
use tandem_hwtest::resync::{self, ResyncOptions};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-hw");

#[test]
fn netns_failover_resync_secondary_with_a_lost_disk_receives_every_binding_8_5_2() {
    require_privileges!();
    let opts = ResyncOptions {
        bindings: 20_000,
        tls: true,
        shards: 2,
        timeout: Duration::from_secs(180),
        ..ResyncOptions::default()
    };
    let report = resync::run(Path::new(TANDEM), &opts, &mut |l| eprintln!("resync: {l}"))
        .expect("the secondary reaches RECOVER-WAIT (UPDDONE) and both stores can be read");
    eprint!("{}", report.render());
    eprintln!("{}", report.json());
    assert!(report.failures().is_empty(), "{:?}", report.failures());
    assert_eq!(report.addresses + report.prefixes, opts.bindings);
    assert!(report.prefixes > 0 && report.addresses > report.prefixes);
    // Every binding the primary holds, and nothing else, is on the secondary: the prepared
    // ones ACTIVE, plus any prefixes the primary gave it (§4.2.2), in the same shards.
    assert_eq!(report.mismatches, 0, "{:?}", report.mismatch_examples);
    assert_eq!(report.secondary_active, opts.bindings);
    assert_eq!(report.secondary_stored, report.primary_stored);
    assert!(report.leases_accepted >= opts.bindings, "{report:?}");
    assert_eq!(report.leases_rejected, 0);
    assert_eq!(report.leases_json_lines, Some(report.secondary_stored));
    // The order of §8.5.2: the link, then UPDREQALL, then UPDDONE.
    assert!(
        0.0 < report.link_up_s
            && report.link_up_s <= report.updreqall_s
            && report.updreqall_s <= report.upddone_s,
        "{report:?}"
    );
    assert!(report.log_problems.is_empty(), "{:?}", report.log_problems);
}
