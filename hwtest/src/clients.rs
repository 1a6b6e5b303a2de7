//! Real Debian DHCPv6 clients, and a relay agent, driven inside network namespaces.
//!
//! Every program runs as `ip netns exec <ns> unshare --mount --propagation private -- sh -c
//! <mounts> -- <program> ...`: the network namespace isolates its sockets and interfaces, and a
//! private mount namespace puts per-run scratch directories over the fixed paths the program
//! insists on. Nothing a client writes lands on the host's filesystem, and clients of parallel
//! tests never share a DUID file, lease file or pid file. Every client runs its own recording
//! script instead of the distribution's hooks, so none of them can touch the host's
//! `/etc/resolv.conf` (namespaces share the filesystem).
//!
//! The mounts ([`Mount`], performed by [`MOUNT_WRAPPER`] in the private mount namespace; the
//! paths are listed in [`crate::needs`], which `cargo xtask check-env` checks):
//!
//! * **Directories** (`/var/lib/dhcpcd`, `/run/dhcpcd`, `/var/lib/dibbler`, `/var/log/dibbler`,
//!   `/var/lib/dhcpv6`) are bind-mounted from the scratch directory. A mount point has to
//!   exist, and none of them is guaranteed to: `/run` is a tmpfs (a fresh machine after every
//!   boot), and the others belong to packages that need not be installed the way we expect. So
//!   a missing directory mount point is created first (`mkdir -p`, on the host: an empty
//!   directory, which is what the package would have made).
//! * **Files** are never created as mount points: a bind over a file whose target is missing
//!   fails with a message (exit status 97) rather than leaving an empty file in the host's
//!   `/etc`. No client uses one today; see the next point for `/etc/resolv.conf`.
//! * **dibbler's `/etc`**: dibbler reads `/etc/dibbler/client.conf` and writes
//!   `/etc/resolv.conf` (appending `nameserver` lines, and on exit renaming it to
//!   `resolv.conf.old` and writing it anew), `/etc/dibbler/radvd.conf` and possibly other fixed
//!   files in `/etc`. A bind over `/etc/resolv.conf` needs that file on the host (a host
//!   without one, or with a dangling symlink to a stub in a fresh `/run`, cannot be served
//!   that way, and dibbler would then create the file in the host's `/etc`), and a rename of
//!   a bind-mounted file fails. Instead dibbler gets an overlay of the whole `/etc` (overlayfs,
//!   the host's `/etc` as the read-only lower layer, the upper layer in its scratch directory
//!   as `etc/`): its generated `client.conf` is `etc/dibbler/client.conf` there, and
//!   `etc/resolv.conf` starts as a copy of the host's resolv.conf (empty if the host has none),
//!   so whatever dibbler writes in `/etc` lands in the scratch directory, whether or not the
//!   host has the file. Its DNS servers are read from that copy.
//!
//! | client | command line (inside the namespace) |
//! |---|---|
//! | ISC dhclient | `dhclient -6 -d -v [-N] [-P] [-S] -lf <dir>/dhclient6.leases -pf <dir>/dhclient6.pid -sf <dir>/record.sh <if>` |
//! | dhcpcd | `dhcpcd -6 -B -d -f <dir>/dhcpcd.conf -c <dir>/record.sh <if>` |
//! | dibbler | `dibbler-client run` (config in the bind-mounted `/etc/dibbler/client.conf`) |
//! | WIDE | `dhcp6c -f -D -c <dir>/dhcp6c.conf -p <dir>/dhcp6c.pid <if>` |
//! | WIDE relay | `dhcp6relay -f -D -s <server> -r <upstream if> -p <dir>/dhcp6relay.pid <client if>` |
//!
//! What a client got is read from what it reported to its script (one `@@begin`/`@@end` block
//! of environment per call), from its log, and from the global addresses it put on its
//! interface ([`ClientResult`]).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead as _};
use std::net::Ipv6Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::needs;
use crate::netns::NetNs;
use crate::process::{BoundedOutput, ip, run_bounded, wait_timeout};
use crate::topo::mac_string;

/// How long a client may take to exit after SIGTERM (dibbler and dhcp6c send a RELEASE and
/// wait for its reply first, which takes them about a second each without a server).
pub const CLIENT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The host's resolver configuration, which dibbler's private copy starts from.
const DIBBLER_HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Timeout of one-shot helper commands (`dhclient -r`, `ip addr show`).
const HELPER_TIMEOUT: Duration = Duration::from_secs(20);

/// The shell wrapper run inside the private mount namespace. Its arguments are mounts, then
/// `--`, then the command, which replaces the shell (so the child we hold is the client itself
/// and gets our signals). Mounts, in order:
///
/// * `bind SRC DST`: bind-mounts `SRC` over `DST`. A directory `SRC` gets its `DST` created
///   if missing (`mkdir -p`); a file `SRC` needs an existing `DST` (never created).
/// * `overlay UPPER WORK DST`: mounts an overlay of `DST` over `DST`, with `UPPER` and `WORK`
///   (empty, on the same filesystem as `UPPER`) as its upper and work directories. None of
///   the three may contain `,` or `:` (overlayfs option syntax).
///
/// A mount that fails ends the wrapper with exit status 97 (after saying why on stderr); a
/// malformed argument list with 96.
pub const MOUNT_WRAPPER: &str = r#"while [ "$#" -gt 0 ]; do
  case "$1" in
    --) shift; exec "$@";;
    bind)
      if [ -d "$2" ]; then
        mkdir -p "$3" || exit 97
      elif [ ! -e "$3" ]; then
        echo "tandem-hwtest: mount point $3 does not exist (file mount points are not created)" >&2
        exit 97
      fi
      mount --bind "$2" "$3" || exit 97
      shift 3;;
    overlay)
      mount -t overlay overlay -o "lowerdir=$4,upperdir=$2,workdir=$3" "$4" || exit 97
      shift 4;;
    *) echo "tandem-hwtest: bad mount argument $1" >&2; exit 96;;
  esac
done
exit 96"#;

/// One mount of a client's private mount namespace (see [`MOUNT_WRAPPER`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mount {
    /// `src` bind-mounted over the fixed path `dst` (a missing directory `dst` is created).
    Bind {
        /// The scratch directory or file.
        src: PathBuf,
        /// The fixed path (one of [`crate::needs::MOUNT_POINTS`] for directories).
        dst: PathBuf,
    },
    /// An overlay of `dst` over itself: reads see `dst` with `upper` on top, writes go to
    /// `upper`.
    Overlay {
        /// The upper layer (a scratch directory).
        upper: PathBuf,
        /// overlayfs' work directory (empty, on the same filesystem as `upper`).
        work: PathBuf,
        /// The directory overlaid.
        dst: PathBuf,
    },
}

impl Mount {
    /// The wrapper arguments of this mount.
    fn push_args(&self, cmd: &mut Command) {
        match self {
            Self::Bind { src, dst } => {
                cmd.arg("bind").arg(src).arg(dst);
            }
            Self::Overlay { upper, work, dst } => {
                cmd.arg("overlay").arg(upper).arg(work).arg(dst);
            }
        }
    }
}

/// The script every client calls: appends its arguments and its whole environment to
/// `record.out` next to itself, one block per call. `%OUT%` is replaced by that file's path.
const RECORD_SCRIPT: &str =
    "#!/bin/sh\n{ echo \"@@begin $*\"; env | sort; echo '@@end'; } >> '%OUT%'\nexit 0\n";

/// A directory under `/tmp` private to one run, removed (with its contents) on drop.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates `/tmp/tandem-<tag>-<pid>-<counter>` (mode 0755, so a client that drops
    /// privileges can still reach its scripts).
    pub fn new(tag: &str) -> io::Result<Self> {
        Self::new_in(&std::env::temp_dir(), tag)
    }

    /// Creates `<parent>/tandem-<tag>-<pid>-<counter>` (e.g. on a tmpfs), as [`Self::new`].
    pub fn new_in(parent: &Path, tag: &str) -> io::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("tandem-{tag}-{}-{n}", std::process::id()));
        fs::create_dir(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        Ok(Self { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<dir>/<name>`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates (or empties) the sub-directory `name`.
    pub fn subdir(&self, name: &str) -> io::Result<PathBuf> {
        let p = self.file(name);
        if p.exists() {
            fs::remove_dir_all(&p)?;
        }
        fs::create_dir(&p)?;
        Ok(p)
    }

    /// Writes `<dir>/<name>` with `contents` and permission bits `mode`.
    pub fn write(&self, name: &str, contents: &str, mode: u32) -> io::Result<PathBuf> {
        let p = self.file(name);
        fs::write(&p, contents)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
        Ok(p)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory under /tmp is harmless.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Which DHCPv6 client program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// ISC `dhclient -6`.
    Dhclient,
    /// `dhcpcd` (IPv6 only).
    Dhcpcd,
    /// `dibbler-client`.
    Dibbler,
    /// WIDE `dhcp6c`.
    WideDhcp6c,
}

impl ClientKind {
    /// The program's name.
    pub fn program(self) -> &'static str {
        match self {
            Self::Dhclient => "dhclient",
            Self::Dhcpcd => "dhcpcd",
            Self::Dibbler => "dibbler-client",
            Self::WideDhcp6c => "dhcp6c",
        }
    }
}

/// What `dhclient -6` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhclientMode {
    /// One IA_NA (`-N`, the default).
    Na,
    /// One IA_PD only (`-P`).
    Pd,
    /// An IA_NA and an IA_PD in the same exchange (`-N -P`).
    NaPd,
    /// Stateless: INFORMATION-REQUEST, no IA (`-S`, RFC 8415 §18.2.6).
    Stateless,
}

impl DhclientMode {
    /// The mode flags of the command line.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Self::Na => &["-N"],
            Self::Pd => &["-P"],
            Self::NaPd => &["-N", "-P"],
            Self::Stateless => &["-S"],
        }
    }
}

/// What a stateful client (dhcpcd, dibbler, dhcp6c) asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatefulOptions {
    /// Request an IA_NA.
    pub ia_na: bool,
    /// Request an IA_PD.
    pub ia_pd: bool,
    /// Send Rapid Commit in the SOLICIT (RFC 8415 §18.2.1; dhcpcd and dibbler only, WIDE
    /// dhcp6c's `send rapid-commit` too).
    pub rapid_commit: bool,
    /// dhcp6c only: `sla-len` of its `prefix-interface` (64 minus the delegated length).
    pub sla_len: u8,
}

impl Default for StatefulOptions {
    /// IA_NA and IA_PD, no Rapid Commit, a /56 expected.
    fn default() -> Self {
        Self {
            ia_na: true,
            ia_pd: true,
            rapid_commit: false,
            sla_len: 8,
        }
    }
}

impl StatefulOptions {
    /// Appends `na` if an IA_NA is asked for, `pd` if an IA_PD is, and `neither` if none is
    /// (an Information-request client, RFC 8415 §18.2.6): a client config's IA lines.
    fn push_ia_lines(&self, c: &mut String, na: &str, pd: &str, neither: &str) {
        if self.ia_na {
            c.push_str(na);
        }
        if self.ia_pd {
            c.push_str(pd);
        }
        if !self.ia_na && !self.ia_pd {
            c.push_str(neither);
        }
    }
}

/// One call of a client's script: its arguments and environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptCall {
    /// The arguments (`$*`), e.g. dibbler's `add`.
    pub args: String,
    /// The environment, by name.
    pub env: BTreeMap<String, String>,
}

impl ScriptCall {
    /// The reason of the call: `$reason` (dhclient, dhcpcd), `$REASON` (dhcp6c), else the
    /// first argument (dibbler: `add`, `update`, `delete`, `expire`).
    pub fn reason(&self) -> &str {
        self.env
            .get("reason")
            .or_else(|| self.env.get("REASON"))
            .map_or_else(
                || self.args.split_whitespace().next().unwrap_or(""),
                String::as_str,
            )
    }
}

/// What a client configured, from its script calls, its log and its interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientResult {
    /// IA_NA addresses.
    pub addresses: Vec<Ipv6Addr>,
    /// Delegated prefixes, with their lengths.
    pub prefixes: Vec<(Ipv6Addr, u8)>,
    /// DNS recursive name servers (RFC 3646).
    pub dns: Vec<Ipv6Addr>,
    /// Every script call so far, in order.
    pub calls: Vec<ScriptCall>,
    /// The client's own log (stdout and stderr, and dibbler's log file).
    pub log: String,
}

impl ClientResult {
    /// The reasons of all script calls, in order (e.g. `PREINIT`, `BOUND6`, `RENEW6`).
    pub fn reasons(&self) -> Vec<&str> {
        self.calls.iter().map(ScriptCall::reason).collect()
    }

    /// Whether the client holds at least one address or prefix.
    pub fn has_lease(&self) -> bool {
        !self.addresses.is_empty() || !self.prefixes.is_empty()
    }
}

/// Parses the file the recording script appends to.
pub fn parse_record(text: &str) -> Vec<ScriptCall> {
    let mut calls = Vec::new();
    let mut current: Option<ScriptCall> = None;
    for line in text.lines() {
        if let Some(args) = line.strip_prefix("@@begin") {
            current = Some(ScriptCall {
                args: args.trim().to_owned(),
                env: BTreeMap::new(),
            });
        } else if line == "@@end" {
            calls.extend(current.take());
        } else if let (Some(call), Some((k, v))) = (current.as_mut(), line.split_once('=')) {
            call.env.insert(k.to_owned(), v.to_owned());
        }
    }
    calls
}

/// Reasons after which the client holds nothing any more.
const GONE_REASONS: &[&str] = &[
    "RELEASE6",
    "EXPIRE6",
    "STOP6",
    "STOPPED",
    "NOCARRIER",
    "delete",
    "expire",
    "RELEASE",
];

/// Addresses, prefixes and DNS servers of one script call, whatever the client's naming:
/// dhclient (`new_ip6_address`, `new_ip6_prefix`, `new_dhcp6_name_servers`), dhcpcd
/// (`new_dhcp6_ia_na*`, `new_dhcp6_ia_pd*`, `new_delegated_dhcp6_prefix`,
/// `new_dhcp6_name_servers`), dibbler (`ADDR<n>`, `PREFIX<n>` + `PREFIX<n>LEN`,
/// `SRV_OPTION23`), dhcp6c (`new_domain_name_servers`).
fn lease_of(call: &ScriptCall) -> ClientResult {
    let mut r = ClientResult::default();
    let env = &call.env;
    for (k, v) in env {
        let v = v.trim_matches(['\'', '"']);
        let is_dhcpcd_na = k.starts_with("new_dhcp6_ia_na") || k.starts_with("new_dhcp6_ia_ta");
        let is_dibbler_addr = k
            .strip_prefix("ADDR")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if k == "new_ip6_address" || is_dhcpcd_na || is_dibbler_addr {
            r.addresses.extend(v.parse::<Ipv6Addr>().ok());
        }
        if k == "new_ip6_prefix" || k == "new_delegated_dhcp6_prefix" {
            r.prefixes
                .extend(v.split_whitespace().filter_map(parse_cidr));
        }
        if k.starts_with("new_dhcp6_ia_pd") && !k.ends_with("_length") {
            if let Some(p) = parse_cidr(v) {
                r.prefixes.push(p);
            } else if let (Ok(addr), Some(Ok(len))) = (
                v.parse::<Ipv6Addr>(),
                env.get(&format!("{k}_length")).map(|l| l.parse::<u8>()),
            ) {
                r.prefixes.push((addr, len));
            }
        }
        let is_dibbler_prefix = k
            .strip_prefix("PREFIX")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_dibbler_prefix
            && let (Ok(addr), Some(Ok(len))) = (
                v.parse::<Ipv6Addr>(),
                env.get(&format!("{k}LEN")).map(|l| l.parse::<u8>()),
            )
        {
            r.prefixes.push((addr, len));
        }
        if k == "new_dhcp6_name_servers" || k == "new_domain_name_servers" || k == "SRV_OPTION23" {
            r.dns.extend(
                v.split_whitespace()
                    .filter_map(|a| a.parse::<Ipv6Addr>().ok()),
            );
        }
    }
    dedup(&mut r.addresses);
    dedup(&mut r.prefixes);
    dedup(&mut r.dns);
    r
}

/// Hex bytes, with or without `:` separators (whitespace around is ignored).
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.trim().bytes().filter(|&b| b != b':').collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// The `default-duid "..."` of a dhclient lease file: printable bytes as themselves, others
/// as `\NNN` octal escapes (and `\"`, `\\`). The last such line wins.
pub fn dhclient_duid(leases: &[u8]) -> Option<Vec<u8>> {
    let marker = b"default-duid \"";
    let start = leases
        .windows(marker.len())
        .rposition(|w| w == marker)?
        .checked_add(marker.len())?;
    let mut bytes = leases.get(start..)?.iter().copied();
    let mut out = Vec::new();
    loop {
        match bytes.next()? {
            b'"' => return Some(out),
            b'\\' => {
                let first = bytes.next()?;
                if first.is_ascii_digit() {
                    let mut v = u32::from(first - b'0');
                    for _ in 0..2 {
                        let d = bytes.next().filter(u8::is_ascii_digit)?;
                        v = v * 8 + u32::from(d - b'0');
                    }
                    out.push(u8::try_from(v).ok()?);
                } else {
                    out.push(first);
                }
            }
            b => out.push(b),
        }
    }
}

/// `addr/len`.
fn parse_cidr(s: &str) -> Option<(Ipv6Addr, u8)> {
    let (a, l) = s.split_once('/')?;
    let len = l.parse::<u8>().ok().filter(|&l| l <= 128)?;
    Some((a.parse().ok()?, len))
}

fn dedup<T: Ord>(v: &mut Vec<T>) {
    v.sort();
    v.dedup();
}

/// Interprets a client's script calls and log. Lease data accumulate over the calls (dhclient
/// calls its script once per IA); a release/expiry call removes its `old_ip6_address` /
/// `old_ip6_prefix`, or everything when it names none. Log lines add what scripts do not see:
/// WIDE dhcp6c with `-D` logs `create an address <a> ...` and `create a prefix <p>/<len> ...`
/// (its script gets no IAs); dibbler logs `PD: Adding prefix <p>/<len> ...` (and, after a
/// Rapid Commit REPLY, skips its script altogether).
pub fn interpret(calls: Vec<ScriptCall>, log: String) -> ClientResult {
    let mut state = ClientResult::default();
    for call in &calls {
        let lease = lease_of(call);
        if GONE_REASONS.contains(&call.reason()) {
            let old_addr = call.env.get("old_ip6_address").and_then(|a| a.parse().ok());
            let old_prefix = call.env.get("old_ip6_prefix").and_then(|p| parse_cidr(p));
            if old_addr.is_none() && old_prefix.is_none() {
                state.addresses.clear();
                state.prefixes.clear();
            }
            state.addresses.retain(|a| Some(*a) != old_addr);
            state.prefixes.retain(|p| Some(*p) != old_prefix);
        } else {
            state.addresses.extend(lease.addresses);
            state.prefixes.extend(lease.prefixes);
        }
        if !lease.dns.is_empty() {
            state.dns = lease.dns;
        }
    }
    for line in log.lines() {
        let word_after = |marker: &str| {
            line.split_once(marker)
                .and_then(|(_, rest)| rest.split_whitespace().next())
        };
        if let Some(a) = word_after("create an address ").and_then(|a| a.parse().ok()) {
            state.addresses.push(a);
        }
        for marker in ["create a prefix ", "PD: Adding prefix "] {
            if let Some(p) = word_after(marker).and_then(parse_cidr) {
                state.prefixes.push(p);
            }
        }
    }
    dedup(&mut state.addresses);
    dedup(&mut state.prefixes);
    state.calls = calls;
    state.log = log;
    state
}

/// IPv6 `nameserver` lines of a resolv.conf.
fn resolv_conf_servers(text: &str) -> Vec<Ipv6Addr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

/// Global addresses on `iface` in `ns` (`ip -6 -o addr show dev <iface> scope global`).
pub fn global_addresses(ns: &NetNs, iface: &str) -> io::Result<Vec<Ipv6Addr>> {
    global_addresses_in(ns.name(), iface)
}

fn global_addresses_in(ns: &str, iface: &str) -> io::Result<Vec<Ipv6Addr>> {
    let out = ip(&[
        "-n", ns, "-6", "-o", "addr", "show", "dev", iface, "scope", "global",
    ])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet6")?;
            parse_cidr(words.next()?).map(|(a, _)| a)
        })
        .collect())
}

/// Builds `ip netns exec <ns> unshare --mount --propagation private -- sh -c <wrapper> sh
/// <mounts>... -- <argv>`.
fn isolated(ns: &str, mounts: &[Mount], argv: &[String]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns])
        .args(["unshare", "--mount", "--propagation", "private", "--"])
        .args(["sh", "-c", MOUNT_WRAPPER, "sh"]);
    for mount in mounts {
        mount.push_args(&mut cmd);
    }
    cmd.arg("--").args(argv);
    cmd
}

/// A DHCPv6 client (or relay) running in a namespace; SIGTERM then SIGKILL on drop.
#[derive(Debug)]
pub struct RunningClient {
    kind: Option<ClientKind>,
    ns_name: String,
    iface: String,
    command: String,
    /// Global addresses of the interface before the client started (not the client's).
    before: Vec<Ipv6Addr>,
    child: Option<Child>,
    /// Extra argv to release (dhclient: the start flags).
    release_argv: Vec<String>,
    /// Mounts the client runs with (for follow-up commands in the same view).
    mounts: Vec<Mount>,
    // Last: removed after the child is gone.
    dir: ScratchDir,
}

impl RunningClient {
    /// Spawns a client of `kind` on `iface`, noting the interface's global addresses first (so
    /// [`RunningClient::result`] reports only the ones the client adds).
    fn start(
        kind: ClientKind,
        ns: &NetNs,
        iface: &str,
        dir: ScratchDir,
        mounts: Vec<Mount>,
        argv: Vec<String>,
        release_argv: Vec<String>,
    ) -> io::Result<Self> {
        let before = global_addresses(ns, iface)?;
        Self::spawn(
            Some(kind),
            ns,
            iface,
            dir,
            mounts,
            argv,
            release_argv,
            before,
        )
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "private constructor shared by the client kinds"
    )]
    fn spawn(
        kind: Option<ClientKind>,
        ns: &NetNs,
        iface: &str,
        dir: ScratchDir,
        mounts: Vec<Mount>,
        argv: Vec<String>,
        release_argv: Vec<String>,
        before: Vec<Ipv6Addr>,
    ) -> io::Result<Self> {
        let log = File::create(dir.file("client.log"))?;
        let mut cmd = isolated(ns.name(), &mounts, &argv);
        let command = format!("ip netns exec {} {}", ns.name(), argv.join(" "));
        // A process group of its own, so helpers it forks (dhcpcd's privilege-separation
        // proxies) can be killed with it.
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot spawn `{command}`: {e}")))?;
        let mut client = Self {
            kind,
            ns_name: ns.name().to_owned(),
            iface: iface.to_owned(),
            command,
            before,
            child: Some(child),
            release_argv,
            mounts,
            dir,
        };
        // A client that dies at once (bad config, missing binary) is an error now, not a
        // timeout later.
        thread::sleep(Duration::from_millis(200));
        if let Some(status) = client.try_status()? {
            return Err(io::Error::other(format!(
                "`{}` exited at once ({status}):\n{}",
                client.command,
                client.log()
            )));
        }
        Ok(client)
    }

    /// The command line (after `ip netns exec <ns>` the wrapper is left out).
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The private directory (configs, lease/pid/DUID files, `record.out`, `client.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Which client, `None` for a relay.
    pub fn kind(&self) -> Option<ClientKind> {
        self.kind
    }

    /// Exit status if it has exited.
    pub fn try_status(&mut self) -> io::Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(c) => c.try_wait(),
            None => Ok(None),
        }
    }

    /// The client's DUID, read from where it keeps it: dhclient's lease file
    /// (`default-duid "<octal-escaped>"`), dhcpcd's `duid` and dibbler's `client-duid` (hex
    /// with colons), dhcp6c's `dhcp6c_duid` (a 2-byte host-order length, then the DUID).
    pub fn duid(&self) -> Option<Vec<u8>> {
        match self.kind? {
            ClientKind::Dhclient => {
                let leases = fs::read(self.dir.file("dhclient6.leases")).ok()?;
                dhclient_duid(&leases)
            }
            ClientKind::Dhcpcd => parse_hex(&fs::read_to_string(self.dir.file("lib/duid")).ok()?),
            ClientKind::Dibbler => {
                parse_hex(&fs::read_to_string(self.dir.file("lib/client-duid")).ok()?)
            }
            ClientKind::WideDhcp6c => {
                let raw = fs::read(self.dir.file("lib/dhcp6c_duid")).ok()?;
                let (len, rest) = raw.split_first_chunk::<2>()?;
                rest.get(..usize::from(u16::from_ne_bytes(*len)))
                    .map(<[u8]>::to_vec)
            }
        }
    }

    /// Everything the program logged so far (stdout, stderr, and dibbler's log file).
    pub fn log(&self) -> String {
        let mut log = fs::read_to_string(self.dir.file("client.log")).unwrap_or_default();
        if let Ok(extra) = fs::read_to_string(self.dir.file("log/dibbler-client.log")) {
            log.push_str("\n--- /var/log/dibbler/dibbler-client.log ---\n");
            log.push_str(&extra);
        }
        log
    }

    /// What the client has configured right now.
    pub fn result(&self) -> ClientResult {
        let record = fs::read_to_string(self.dir.file("record.out")).unwrap_or_default();
        let mut r = interpret(parse_record(&record), self.log());
        if self.kind == Some(ClientKind::Dibbler) {
            let before = resolv_conf_servers(
                &fs::read_to_string(DIBBLER_HOST_RESOLV_CONF).unwrap_or_default(),
            );
            let now = fs::read_to_string(self.dir.file("etc/resolv.conf")).unwrap_or_default();
            let added: Vec<Ipv6Addr> = resolv_conf_servers(&now)
                .into_iter()
                .filter(|a| !before.contains(a))
                .collect();
            if !added.is_empty() {
                r.dns = added;
            }
        }
        // dhcpcd, dibbler and dhcp6c put IA_NA addresses on the interface themselves.
        if let Ok(now) = global_addresses_in(&self.ns_name, &self.iface) {
            r.addresses
                .extend(now.into_iter().filter(|a| !self.before.contains(a)));
            dedup(&mut r.addresses);
        }
        r
    }

    /// Polls [`RunningClient::result`] every 100 ms until `done` holds; after `timeout` the
    /// error carries the command, the script calls and the log.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        done: impl Fn(&ClientResult) -> bool,
    ) -> io::Result<ClientResult> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.result();
            if done(&r) {
                return Ok(r);
            }
            let exited = self.try_status()?;
            // A client that finishes its job and exits (dhclient -S exits after its
            // INFORM6) may have run its script between the read above and this check: read
            // once more so the verdict and the error see what it left.
            let r = if exited.is_some() { self.result() } else { r };
            if exited.is_some() && done(&r) {
                return Ok(r);
            }
            if exited.is_some() || Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "`{}` {} ; script reasons {:?}; result {:?} {:?} {:?}; log:\n{}",
                        self.command,
                        exited.map_or_else(
                            || format!("did not get there within {timeout:?}"),
                            |s| format!("exited ({s})")
                        ),
                        r.reasons(),
                        r.addresses,
                        r.prefixes,
                        r.dns,
                        r.log
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the client holds an address or a prefix.
    pub fn wait_for_lease(&mut self, timeout: Duration) -> io::Result<ClientResult> {
        self.wait_for(timeout, ClientResult::has_lease)
    }

    /// Stops it with SIGTERM (SIGKILL after [`CLIENT_STOP_TIMEOUT`]) and returns what it had
    /// configured and logged. On SIGTERM dhclient and dhcpcd just exit; dibbler and dhcp6c
    /// send a RELEASE first.
    pub fn stop(mut self) -> io::Result<ClientResult> {
        self.terminate(libc::SIGTERM)?;
        Ok(self.result())
    }

    /// Releases the lease (RFC 8415 §18.2.7) and exits: `dhclient -6 -r` (which signals the
    /// running one through its pid file, then sends RELEASE from the lease file), `dhcpcd -6
    /// -k` (through the control socket in the private `/run/dhcpcd`), SIGTERM for dibbler and
    /// dhcp6c. Returns what the client logged.
    pub fn release(mut self) -> io::Result<ClientResult> {
        match self.kind {
            Some(ClientKind::Dhclient | ClientKind::Dhcpcd) => {
                let out = self.run_alongside(&self.release_argv.clone())?;
                if !out.status.success() {
                    return Err(io::Error::other(format!(
                        "`{}` failed ({}): {}{}",
                        self.release_argv.join(" "),
                        out.status,
                        out.stdout,
                        out.stderr
                    )));
                }
                self.terminate(libc::SIGTERM)?;
            }
            _ => self.terminate(libc::SIGTERM)?,
        }
        Ok(self.result())
    }

    /// Runs another command in the same network namespace and with the same mounts (bounded).
    /// Not for dibbler: overlayfs refuses a second overlay with the work directory in use.
    pub fn run_alongside(&self, argv: &[String]) -> io::Result<BoundedOutput> {
        run_bounded(
            &mut isolated(&self.ns_name, &self.mounts, argv),
            HELPER_TIMEOUT,
        )
    }

    fn terminate(&mut self, signal: libc::c_int) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
        // SAFETY: plain syscall on our own child, not yet reaped (we hold its `Child`), so the
        // pid cannot have been reused.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let exited = wait_timeout(&mut child, CLIENT_STOP_TIMEOUT)?.is_some();
        // Whatever is left of its process group (the group id is the pid of our child, which
        // we created with `process_group(0)`; no other process can be in it).
        // SAFETY: plain syscall; ESRCH (nothing left) is the normal outcome and is ignored.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        if !exited {
            child.wait()?;
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "`{}` ignored signal {signal} for {CLIENT_STOP_TIMEOUT:?}; killed",
                    self.command
                ),
            ));
        }
        Ok(())
    }
}

impl Drop for RunningClient {
    fn drop(&mut self) {
        if let Err(e) = self.terminate(libc::SIGTERM) {
            use std::io::Write as _;
            let _ = writeln!(io::stderr().lock(), "warning: {e}");
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Writes `record.sh` into `dir`, recording into `record.out`; returns its path.
fn record_script(dir: &ScratchDir) -> io::Result<PathBuf> {
    let out = dir.file("record.out");
    fs::write(&out, "")?;
    fs::set_permissions(&out, fs::Permissions::from_mode(0o666))?;
    dir.write(
        "record.sh",
        &RECORD_SCRIPT.replace("%OUT%", &path_str(&out)),
        0o755,
    )
}

/// Starts ISC `dhclient -6` in the foreground on `iface` in `ns`:
/// `dhclient -6 -d -v <mode flags> -lf <dir>/dhclient6.leases -pf <dir>/dhclient6.pid -sf
/// <dir>/record.sh <iface>`. The lease file also holds its DUID (`default-duid`); the script
/// only records (`reason` BOUND6, RENEW6, REBIND6, RELEASE6, ...), so nothing is configured on
/// the interface and the host's resolv.conf is never touched.
pub fn dhclient(ns: &NetNs, iface: &str, mode: DhclientMode) -> io::Result<RunningClient> {
    let dir = ScratchDir::new("dhclient")?;
    let script = record_script(&dir)?;
    let common = |extra: &[&str]| {
        let mut argv = strings(&["dhclient", "-6"]);
        argv.extend(strings(extra));
        argv.extend(strings(mode.flags()));
        argv.extend([
            "-lf".to_owned(),
            path_str(&dir.file("dhclient6.leases")),
            "-pf".to_owned(),
            path_str(&dir.file("dhclient6.pid")),
            "-sf".to_owned(),
            path_str(&script),
            iface.to_owned(),
        ]);
        argv
    };
    let argv = common(&["-d", "-v"]);
    let release = common(&["-r", "-v"]);
    RunningClient::start(ClientKind::Dhclient, ns, iface, dir, vec![], argv, release)
}

/// `dhcpcd.conf` for an IPv6-only run: no router solicitation (it would wait for an RA with
/// the M flag before soliciting), no hooks, DUID-LL, IA_NA with IAID 1 and IA_PD with IAID 2.
///
/// DUID-LL, not dhcpcd's default DUID-LLT: dhclient makes a DUID-LLT from the same MAC, and two
/// DUID-LLTs made in the same second on one link are the same DUID (RFC 8415 §11.2), which
/// would make dhclient and dhcpcd one client to the server.
pub fn dhcpcd_config(iface: &str, opts: &StatefulOptions) -> String {
    let mut c = String::from(
        "# written by tandem-hwtest\nduid ll\nipv6only\nnoipv6rs\nnohook resolv.conf\n\
         option domain_name_servers\noption dhcp6_name_servers\n",
    );
    if opts.rapid_commit {
        // `option rapid_commit` is the DHCPv4 option 80; the DHCPv6 one needs the prefix.
        c.push_str("option dhcp6_rapid_commit\n");
    }
    c.push_str(&format!("interface {iface}\n"));
    opts.push_ia_lines(&mut c, "  ia_na 1\n", "  ia_pd 2\n", "  dhcp6\n");
    c
}

/// Starts `dhcpcd -6 -B -d -f <dir>/dhcpcd.conf -c <dir>/record.sh <iface>` with private
/// `/var/lib/dhcpcd` (DUID, lease) and `/run/dhcpcd` (pid file, control socket) bind-mounted
/// from the scratch directory. dhcpcd adds IA_NA addresses to the interface itself.
pub fn dhcpcd(ns: &NetNs, iface: &str, opts: &StatefulOptions) -> io::Result<RunningClient> {
    let dir = ScratchDir::new("dhcpcd")?;
    let script = record_script(&dir)?;
    let conf = dir.write("dhcpcd.conf", &dhcpcd_config(iface, opts), 0o644)?;
    let mounts = vec![
        Mount::Bind {
            src: dir.subdir("lib")?,
            dst: needs::DHCPCD_DB_DIR.into(),
        },
        Mount::Bind {
            src: dir.subdir("run")?,
            dst: needs::DHCPCD_RUN_DIR.into(),
        },
    ];
    let (conf, script) = (path_str(&conf), path_str(&script));
    let argv = strings(&[
        "dhcpcd", "-6", "-B", "-d", "-f", &conf, "-c", &script, iface,
    ]);
    let release = strings(&["dhcpcd", "-6", "-k", "-f", &conf, iface]);
    RunningClient::start(ClientKind::Dhcpcd, ns, iface, dir, mounts, argv, release)
}

/// dibbler's `client.conf` (RFC 8415 §18.2.1 Rapid Commit with `rapid-commit yes`).
pub fn dibbler_config(iface: &str, script: &Path, opts: &StatefulOptions) -> String {
    let mut c = format!(
        "# written by tandem-hwtest\nlog-level 8\nlog-mode short\nscript \"{}\"\niface \"{iface}\" {{\n",
        script.display()
    );
    if opts.rapid_commit {
        c.push_str("  rapid-commit yes\n");
    }
    opts.push_ia_lines(&mut c, "  ia\n", "  pd\n", "");
    c.push_str("  option dns-server\n}\n");
    c
}

/// Starts `dibbler-client run`. It has fixed paths only (its `-w <dir>` flag is not honoured
/// for the config file), so `/var/lib/dibbler` (DUID, `client-AddrMgr.xml`, pid file) and
/// `/var/log/dibbler` are bind-mounted from the scratch directory, and `/etc` is overlaid with
/// the scratch directory's `etc/` (holding the generated `dibbler/client.conf` and a copy of the
/// host's `resolv.conf`; see the module docs). On SIGTERM it sends a RELEASE before exiting.
pub fn dibbler(ns: &NetNs, iface: &str, opts: &StatefulOptions) -> io::Result<RunningClient> {
    let dir = ScratchDir::new("dibbler")?;
    let script = record_script(&dir)?;
    let etc = dir.subdir("etc")?;
    fs::create_dir(etc.join("dibbler"))?;
    fs::write(
        etc.join("dibbler/client.conf"),
        dibbler_config(iface, &script, opts),
    )?;
    // dibbler edits /etc/resolv.conf when it gets DNS servers (and restores it on exit): it
    // gets a private copy, which is also where its DNS servers are read from. A regular file
    // in the upper layer also hides a host symlink (to a resolver stub that may not exist).
    let resolv = fs::read_to_string(DIBBLER_HOST_RESOLV_CONF).unwrap_or_default();
    fs::write(etc.join("resolv.conf"), resolv)?;
    let mounts = vec![
        Mount::Overlay {
            upper: etc,
            work: dir.subdir("etc-work")?,
            dst: needs::DIBBLER_OVERLAY.into(),
        },
        Mount::Bind {
            src: dir.subdir("lib")?,
            dst: needs::DIBBLER_LIB_DIR.into(),
        },
        Mount::Bind {
            src: dir.subdir("log")?,
            dst: needs::DIBBLER_LOG_DIR.into(),
        },
    ];
    let argv = strings(&["dibbler-client", "run"]);
    RunningClient::start(ClientKind::Dibbler, ns, iface, dir, mounts, argv, vec![])
}

/// WIDE `dhcp6c.conf`: IA_NA 0 and IA_PD 0, the delegated prefix's first /64 (`sla-id 1`)
/// assigned back to `iface`.
pub fn dhcp6c_config(iface: &str, script: &Path, opts: &StatefulOptions) -> String {
    let mut c = format!("# written by tandem-hwtest\ninterface {iface} {{\n");
    if opts.rapid_commit {
        c.push_str("  send rapid-commit;\n");
    }
    opts.push_ia_lines(
        &mut c,
        "  send ia-na 0;\n",
        "  send ia-pd 0;\n",
        "  information-only;\n",
    );
    c.push_str(&format!(
        "  request domain-name-servers;\n  script \"{}\";\n}};\n",
        script.display()
    ));
    if opts.ia_na {
        c.push_str("id-assoc na 0 { };\n");
    }
    if opts.ia_pd {
        c.push_str(&format!(
            "id-assoc pd 0 {{\n  prefix-interface {iface} {{ sla-id 1; sla-len {}; }};\n}};\n",
            opts.sla_len
        ));
    }
    c
}

/// Starts `dhcp6c -f -D -c <dir>/dhcp6c.conf -p <dir>/dhcp6c.pid <iface>` with a private
/// `/var/lib/dhcpv6` (its DUID file `dhcp6c_duid`) bind-mounted from the scratch directory.
/// Its control port (127.0.0.1:5546) is per network namespace. What it got is read from its
/// debug log (`create an address`, `create a prefix`) and the interface.
pub fn wide_dhcp6c(ns: &NetNs, iface: &str, opts: &StatefulOptions) -> io::Result<RunningClient> {
    let dir = ScratchDir::new("dhcp6c")?;
    let script = record_script(&dir)?;
    let conf = dir.write("dhcp6c.conf", &dhcp6c_config(iface, &script, opts), 0o644)?;
    let mounts = vec![Mount::Bind {
        src: dir.subdir("lib")?,
        dst: needs::WIDE_DB_DIR.into(),
    }];
    let (conf, pid) = (path_str(&conf), path_str(&dir.file("dhcp6c.pid")));
    let argv = strings(&["dhcp6c", "-f", "-D", "-c", &conf, "-p", &pid, iface]);
    RunningClient::start(ClientKind::WideDhcp6c, ns, iface, dir, mounts, argv, vec![])
}

/// Starts the WIDE relay agent (RFC 8415 §19): `dhcp6relay -f -D -s <server> -r <upstream>
/// -p <dir>/dhcp6relay.pid <downstream>` in `ns`. It relays what clients on `downstream`
/// multicast as RELAY-FORW to `server` (unicast) from `upstream`, with the link-address set to
/// a global address of `downstream`. Quirk: it sends (and expects RELAY-REPL back on) source
/// port **546**, not 547, so a server must reply to the datagram's source port.
pub fn wide_relay(
    ns: &NetNs,
    downstream: &str,
    upstream: &str,
    server: Ipv6Addr,
) -> io::Result<RunningClient> {
    let dir = ScratchDir::new("dhcp6relay")?;
    let (server, pid) = (server.to_string(), path_str(&dir.file("dhcp6relay.pid")));
    let argv = strings(&[
        "dhcp6relay",
        "-f",
        "-D",
        "-s",
        &server,
        "-r",
        upstream,
        "-p",
        &pid,
        downstream,
    ]);
    RunningClient::spawn(None, ns, downstream, dir, vec![], argv, vec![], vec![])
}

/// How long `tandem run` may take to print `READY`.
pub const RUN_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// `ip netns exec <ns> <tandem> run --config <dir>/tandem.toml --state-dir <dir>/state
/// --capacity <n>` as a child process, awaited until it prints `READY`; SIGTERM (then SIGKILL)
/// on drop. Its stderr (tracing logs) goes to `<dir>/server.log`.
#[derive(Debug)]
pub struct TandemRun {
    bin: PathBuf,
    command: String,
    child: Option<Child>,
    lines: Receiver<String>,
    stdout: Vec<String>,
    state_dir: PathBuf,
    // Last: removed after the child is gone.
    dir: ScratchDir,
}

impl TandemRun {
    /// Writes `config` (TOML, `tandem_config` schema) into a scratch directory and starts the
    /// server in `ns` with a lease store of `capacity` bindings.
    pub fn start(bin: &Path, ns: &NetNs, config: &str, capacity: u64) -> io::Result<Self> {
        let dir = ScratchDir::new("run")?;
        let conf = dir.write("tandem.toml", config, 0o644)?;
        let state_dir = dir.file("state");
        let log = File::create(dir.file("server.log"))?;
        let argv = [
            "run".to_owned(),
            "--config".to_owned(),
            path_str(&conf),
            "--state-dir".to_owned(),
            path_str(&state_dir),
            "--capacity".to_owned(),
            capacity.to_string(),
        ];
        let command = format!(
            "ip netns exec {} {} {}",
            ns.name(),
            bin.display(),
            argv.join(" ")
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(bin)
            .args(&argv)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot spawn `{command}`: {e}")))?;
        let lines = line_channel(child.stdout.take());
        let mut run = Self {
            bin: bin.to_owned(),
            command,
            child: Some(child),
            lines,
            stdout: vec![],
            state_dir,
            dir,
        };
        let deadline = Instant::now() + RUN_READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match run.lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.starts_with("READY");
                    run.stdout.push(line);
                    if ready {
                        return Ok(run);
                    }
                }
                Err(e) => {
                    let why = match e {
                        RecvTimeoutError::Timeout => "printed no READY in time",
                        RecvTimeoutError::Disconnected => "exited before READY",
                    };
                    return Err(io::Error::other(format!(
                        "`{}` {why}; stdout: {:?}; log:\n{}",
                        run.command,
                        run.stdout,
                        run.log()
                    )));
                }
            }
        }
    }

    /// The state directory (lease tables, server DUID).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The server's tracing log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.file("server.log")).unwrap_or_default()
    }

    /// `tandem leases --state-dir <dir> --json`, parsed (works while the server runs).
    pub fn leases(&self) -> io::Result<Vec<LeaseRow>> {
        leases(&self.bin, &self.state_dir)
    }

    /// Stops it with SIGTERM and returns all it printed on stdout (`READY`, `COUNTERS ...`).
    pub fn stop(mut self) -> io::Result<Vec<String>> {
        self.terminate()?;
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            self.stdout.push(line);
        }
        Ok(std::mem::take(&mut self.stdout))
    }

    fn terminate(&mut self) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
        // SAFETY: plain syscall on our own unreaped child (we hold its `Child`).
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if wait_timeout(&mut child, CLIENT_STOP_TIMEOUT)?.is_none() {
            let _ = child.kill();
            child.wait()?;
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("`{}` ignored SIGTERM; killed", self.command),
            ));
        }
        Ok(())
    }
}

impl Drop for TandemRun {
    fn drop(&mut self) {
        if let Err(e) = self.terminate() {
            use std::io::Write as _;
            let _ = writeln!(io::stderr().lock(), "warning: {e}");
        }
    }
}

/// Lines of `pipe`, sent as they arrive by a thread of their own.
fn line_channel(pipe: Option<impl io::Read + Send + 'static>) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        if let Some(pipe) = pipe {
            for line in io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

/// One line of `tandem leases --json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRow {
    /// `na` or `pd`.
    pub kind: String,
    /// The address of an `na` lease.
    pub address: Option<Ipv6Addr>,
    /// The prefix of a `pd` lease.
    pub prefix: Option<(Ipv6Addr, u8)>,
    /// The client's DUID.
    pub duid: Vec<u8>,
    /// The IAID.
    pub iaid: u32,
    /// `active`, `released`, ...
    pub state: String,
    /// The JSON line itself.
    pub raw: String,
}

/// The string value of `"key":"value"` in a flat JSON object (values never hold quotes here:
/// addresses, hex, fixed words).
fn json_str<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (_, rest) = line.split_once(&format!("\"{key}\":\""))?;
    rest.split_once('"').map(|(v, _)| v)
}

/// Parses one JSON line of `tandem leases --json`.
pub fn parse_lease_line(line: &str) -> Option<LeaseRow> {
    let iaid = line
        .split_once("\"iaid\":")?
        .1
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some(LeaseRow {
        kind: json_str(line, "type")?.to_owned(),
        address: json_str(line, "address").and_then(|a| a.parse().ok()),
        prefix: json_str(line, "prefix").and_then(parse_cidr),
        // A lease no client ever held (e.g. a prefix handed to the failover secondary,
        // RFC 8156 §4.2.2) has an empty DUID.
        duid: match json_str(line, "duid")? {
            "" => Vec::new(),
            d => parse_hex(d)?,
        },
        iaid,
        state: json_str(line, "state")?.to_owned(),
        raw: line.to_owned(),
    })
}

/// The checker of "no lease is held by two clients": over `rows` (one table, or the rows of
/// several, e.g. both servers of a failover pair), every address or prefix that is active for
/// more than one client binding (DUID and IAID), one line each naming them all. Empty when
/// every active lease has one holder.
pub fn held_twice<'a>(rows: impl IntoIterator<Item = &'a LeaseRow>) -> Vec<String> {
    type Holders<'a> =
        BTreeMap<(&'a str, Option<Ipv6Addr>, Option<(Ipv6Addr, u8)>), Vec<(&'a [u8], u32)>>;
    let mut holders: Holders<'_> = BTreeMap::new();
    for r in rows.into_iter().filter(|r| r.state == "active") {
        let list = holders
            .entry((r.kind.as_str(), r.address, r.prefix))
            .or_default();
        if !list.contains(&(r.duid.as_slice(), r.iaid)) {
            list.push((r.duid.as_slice(), r.iaid));
        }
    }
    holders
        .into_iter()
        .filter(|(_, h)| h.len() > 1)
        .map(|((kind, address, prefix), h)| {
            let who: Vec<String> = h
                .iter()
                .map(|(duid, iaid)| format!("{} IAID {iaid}", crate::client::hex(duid)))
                .collect();
            let lease = match (address, prefix) {
                (Some(a), _) => a.to_string(),
                (None, Some((p, len))) => format!("{p}/{len}"),
                (None, None) => "?".to_owned(),
            };
            format!(
                "{kind} {lease} active for {} clients: {}",
                h.len(),
                who.join(", ")
            )
        })
        .collect()
}

/// `tandem leases --state-dir <dir> --json` (bounded), parsed; a line that does not parse is
/// an error.
pub fn leases(bin: &Path, state_dir: &Path) -> io::Result<Vec<LeaseRow>> {
    let out = run_bounded(
        Command::new(bin)
            .args(["leases", "--json", "--state-dir"])
            .arg(state_dir),
        HELPER_TIMEOUT,
    )?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "tandem leases failed ({}): {}",
            out.status, out.stderr
        )));
    }
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            parse_lease_line(l)
                .ok_or_else(|| io::Error::other(format!("unparsable lease line: {l}")))
        })
        .collect()
}

/// Three namespaces for relayed clients (RFC 8415 §19):
///
/// ```text
///  <p>-srv                     <p>-rly                                 <p>-cli
///  tandem0 fd01:<n>::1/64 <-> up0 fd01:<n>::2/64 | down0 fd02:<n>::1/64 <-> client0 (link-local)
/// ```
///
/// Forwarding is on in the relay namespace; the server namespace routes `fd02:<n>::/64` via
/// the relay. DAD is off everywhere so link-local addresses are usable at once.
#[derive(Debug)]
pub struct RelayLab {
    index: u16,
    // Dropped in this order (each deletes its veth ends).
    client: NetNs,
    relay: NetNs,
    server: NetNs,
}

impl RelayLab {
    /// The server's interface.
    pub const SERVER_IF: &'static str = "tandem0";
    /// The relay's interface towards the server.
    pub const RELAY_UP_IF: &'static str = "up0";
    /// The relay's interface towards the client.
    pub const RELAY_DOWN_IF: &'static str = "down0";
    /// The client's interface.
    pub const CLIENT_IF: &'static str = "client0";

    /// Builds the topology; namespace names start with `prefix`.
    pub fn new(prefix: &str) -> io::Result<Self> {
        static LABS: AtomicU32 = AtomicU32::new(1);
        let index = u16::try_from(LABS.fetch_add(1, Ordering::Relaxed) % 0xffff)
            .map_err(io::Error::other)?
            .max(1);
        let server = NetNs::new(&format!("{prefix}-srv"))?;
        let relay = NetNs::new(&format!("{prefix}-rly"))?;
        let client = NetNs::new(&format!("{prefix}-cli"))?;
        let lab = Self {
            index,
            client,
            relay,
            server,
        };
        for ns in [&lab.server, &lab.relay, &lab.client] {
            ns.sysctl("net/ipv6/conf/default/accept_dad", "0")?;
            ns.sysctl("net/ipv6/conf/all/accept_dad", "0")?;
        }
        lab.server.ip(&[
            "link",
            "add",
            Self::SERVER_IF,
            "type",
            "veth",
            "peer",
            "name",
            Self::RELAY_UP_IF,
            "netns",
            lab.relay.name(),
        ])?;
        lab.relay.ip(&[
            "link",
            "add",
            Self::RELAY_DOWN_IF,
            "type",
            "veth",
            "peer",
            "name",
            Self::CLIENT_IF,
            "netns",
            lab.client.name(),
        ])?;
        let links = [
            (&lab.server, Self::SERVER_IF, 1u8, Some(lab.server_addr())),
            (&lab.relay, Self::RELAY_UP_IF, 2, Some(lab.relay_up_addr())),
            (
                &lab.relay,
                Self::RELAY_DOWN_IF,
                3,
                Some(lab.relay_down_addr()),
            ),
            (&lab.client, Self::CLIENT_IF, 4, None),
        ];
        for (ns, ifname, n, global) in links {
            let mac = [0x02, 0x74, 0x72, 0, 0, n];
            ns.sysctl(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0")?;
            ns.ip(&["link", "set", "dev", ifname, "address", &mac_string(&mac)])?;
            ns.ip(&["link", "set", "dev", ifname, "up"])?;
            if let Some(addr) = global {
                ns.ip(&["addr", "add", &format!("{addr}/64"), "dev", ifname, "nodad"])?;
            }
        }
        lab.relay.sysctl("net/ipv6/conf/all/forwarding", "1")?;
        lab.server.ip(&[
            "-6",
            "route",
            "add",
            &format!("{}/64", lab.client_prefix()),
            "via",
            &lab.relay_up_addr().to_string(),
        ])?;
        // Wait for the kernel's link-local addresses (no DAD, but assigned asynchronously).
        let deadline = Instant::now() + Duration::from_secs(5);
        for (ns, ifname) in [
            (&lab.client, Self::CLIENT_IF),
            (&lab.relay, Self::RELAY_DOWN_IF),
            (&lab.relay, Self::RELAY_UP_IF),
            (&lab.server, Self::SERVER_IF),
        ] {
            while !ns
                .ip(&["-6", "addr", "show", "dev", ifname, "scope", "link"])?
                .contains("fe80")
            {
                if Instant::now() >= deadline {
                    return Err(io::Error::other(format!(
                        "no link-local address on {ifname}"
                    )));
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(lab)
    }

    /// The server namespace.
    pub fn server_ns(&self) -> &NetNs {
        &self.server
    }

    /// The relay namespace.
    pub fn relay_ns(&self) -> &NetNs {
        &self.relay
    }

    /// The client namespace.
    pub fn client_ns(&self) -> &NetNs {
        &self.client
    }

    /// `fd01:<n>::1`, the server's address.
    pub fn server_addr(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd01, self.index, 0, 0, 0, 0, 0, 1)
    }

    /// `fd01:<n>::2`, the relay's upstream address (the source of its RELAY-FORWs).
    pub fn relay_up_addr(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd01, self.index, 0, 0, 0, 0, 0, 2)
    }

    /// `fd02:<n>::1`, the relay's address on the client link (the link-address of its
    /// RELAY-FORWs, which selects the subnet).
    pub fn relay_down_addr(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd02, self.index, 0, 0, 0, 0, 0, 1)
    }

    /// `fd02:<n>::`, the client link's /64.
    pub fn client_prefix(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd02, self.index, 0, 0, 0, 0, 0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn client_and_wrapper_programs_are_listed_in_needs() {
        let kinds = [
            ClientKind::Dhclient,
            ClientKind::Dhcpcd,
            ClientKind::Dibbler,
            ClientKind::WideDhcp6c,
        ];
        let others = ["dhcp6relay", "ip", "unshare", "sh", "mount", "mkdir"];
        for name in kinds.map(ClientKind::program).into_iter().chain(others) {
            assert!(
                needs::PROGRAMS.iter().any(|p| p.name == name),
                "{name} is run but not in needs::PROGRAMS (so check-env would not check it)"
            );
        }
    }

    /// Runs `argv` in `ns` behind the mount wrapper with `mounts`.
    fn run_wrapped(ns: &NetNs, mounts: &[Mount], argv: &[&str]) -> BoundedOutput {
        run_bounded(
            &mut isolated(ns.name(), mounts, &strings(argv)),
            HELPER_TIMEOUT,
        )
        .unwrap()
    }

    #[test]
    fn netns_mount_wrapper_creates_dir_mount_points_refuses_file_ones_and_overlays() {
        crate::require_privileges!();
        let ns = NetNs::new("tandem-mnt").unwrap();
        let dir = ScratchDir::new("mnt").unwrap();
        // `host` stands for the host's fixed paths (`/run`, `/etc`).
        let host = dir.subdir("host").unwrap();

        // A directory over a missing mount point whose parent is missing too (a fresh /run).
        let src = dir.subdir("run").unwrap();
        fs::write(src.join("marker"), "scratch").unwrap();
        let target = host.join("run/dhcpcd");
        let bind = Mount::Bind {
            src,
            dst: target.clone(),
        };
        let marker = path_str(&target.join("marker"));
        let out = run_wrapped(&ns, &[bind], &["cat", &marker]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, "scratch");
        assert!(
            target.is_dir(),
            "the mount point is left as an empty directory"
        );
        assert!(
            !target.join("marker").exists(),
            "mounted only in the namespace"
        );

        // A file over a missing mount point: refused, and nothing is created.
        let file = dir.write("resolv.conf", "nameserver ::1\n", 0o644).unwrap();
        let missing = host.join("resolv.conf");
        let bind = Mount::Bind {
            src: file,
            dst: missing.clone(),
        };
        let out = run_wrapped(&ns, &[bind], &["true"]);
        assert_eq!(out.status.code(), Some(97), "{out:?}");
        assert!(out.stderr.contains("does not exist"), "{out:?}");
        assert!(!missing.exists());

        // An overlay: reads see the lower directory, writes land in the upper one only.
        let etc = dir.subdir("etc").unwrap();
        fs::write(etc.join("hosts"), "host's").unwrap();
        let overlay = Mount::Overlay {
            upper: dir.subdir("upper").unwrap(),
            work: dir.subdir("work").unwrap(),
            dst: etc.clone(),
        };
        let script = format!(
            "cat {0}/hosts && echo new > {0}/resolv.conf && echo mine > {0}/hosts",
            etc.display()
        );
        let out = run_wrapped(&ns, &[overlay], &["sh", "-c", &script]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, "host's");
        assert_eq!(fs::read_to_string(etc.join("hosts")).unwrap(), "host's");
        assert!(!etc.join("resolv.conf").exists());
        assert_eq!(
            fs::read_to_string(dir.file("upper/resolv.conf")).unwrap(),
            "new\n"
        );
        assert_eq!(
            fs::read_to_string(dir.file("upper/hosts")).unwrap(),
            "mine\n"
        );
    }

    #[test]
    fn parse_record_splits_calls_and_keeps_values_with_equals() {
        let text = "@@begin\nreason=PREINIT\n@@end\n@@begin add x\nA=b=c\nnoise\n@@end\n@@begin\n";
        let calls = parse_record(text);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].reason(), "PREINIT");
        assert_eq!(calls[1].reason(), "add");
        assert_eq!(calls[1].env["A"], "b=c");
    }

    #[test]
    fn interpret_dhclient_bound_then_release_clears_lease() {
        let text = "@@begin\nreason=BOUND6\nnew_ip6_address=2001:db8::10\nnew_ip6_prefixlen=128\n\
                    new_dhcp6_name_servers=2001:db8::53 2001:db8::54\n@@end\n";
        let r = interpret(parse_record(text), String::new());
        assert_eq!(r.addresses, [a("2001:db8::10")]);
        assert_eq!(r.dns, [a("2001:db8::53"), a("2001:db8::54")]);
        let text = format!("{text}@@begin\nreason=RELEASE6\nold_ip6_address=2001:db8::10\n@@end\n");
        let r = interpret(parse_record(&text), String::new());
        assert!(r.addresses.is_empty());
        assert_eq!(r.reasons(), ["BOUND6", "RELEASE6"]);
    }

    #[test]
    fn interpret_dhclient_pd_reads_prefix_with_length() {
        let text = "@@begin\nreason=BOUND6\nnew_ip6_prefix=2001:db8:100::/56\n@@end\n";
        let r = interpret(parse_record(text), String::new());
        assert_eq!(r.prefixes, [(a("2001:db8:100::"), 56)]);
    }

    #[test]
    fn interpret_dhcpcd_ia_variables_give_address_and_prefix() {
        let text = "@@begin\nreason=BOUND6\nnew_dhcp6_ia_na1_ia_addr1=2001:db8::7\n\
                    new_dhcp6_ia_pd1_prefix1=2001:db8:200::\nnew_dhcp6_ia_pd1_prefix1_length=56\n\
                    new_dhcp6_ia_pd1_prefix1_pltime=300\n@@end\n";
        let r = interpret(parse_record(text), String::new());
        assert_eq!(r.addresses, [a("2001:db8::7")]);
        assert_eq!(r.prefixes, [(a("2001:db8:200::"), 56)]);
    }

    #[test]
    fn interpret_dibbler_numbered_variables_give_address_prefix_dns() {
        let text = "@@begin add\nADDR1=2001:db8::9\nADDR1PREF=100\nPREFIX1=2001:db8:300::\n\
                    PREFIX1LEN=48\nSRV_OPTION23=2001:db8::53\n@@end\n";
        let r = interpret(parse_record(text), String::new());
        assert_eq!(r.addresses, [a("2001:db8::9")]);
        assert_eq!(r.prefixes, [(a("2001:db8:300::"), 48)]);
        assert_eq!(r.dns, [a("2001:db8::53")]);
    }

    #[test]
    fn interpret_dhcp6c_log_lines_give_address_and_prefix() {
        let log = "Nov/29 update_address: create an address 2001:db8::5 pltime=100, vltime=200\n\
                   Nov/29 update_prefix: create a prefix 2001:db8:400::/56 pltime=100, vltime=200\n";
        let r = interpret(vec![], log.to_owned());
        assert_eq!(r.addresses, [a("2001:db8::5")]);
        assert_eq!(r.prefixes, [(a("2001:db8:400::"), 56)]);
    }

    #[test]
    fn dhclient_duid_decodes_octal_escapes() {
        let file =
            b"default-duid \"\\000\\001\\000\\0012\\237\\017\\201\\322`\\012\\020\\321,\";\n";
        assert_eq!(
            dhclient_duid(file).unwrap(),
            parse_hex("00:01:00:01:32:9f:0f:81:d2:60:0a:10:d1:2c").unwrap()
        );
        assert_eq!(dhclient_duid(b"default-duid \"\\00"), None);
    }

    #[test]
    fn parse_lease_line_reads_na_and_pd_rows() {
        let na = r#"{"type":"na","address":"fd00:1::1000","duid":"000100012a","iaid":7,"state":"active","preferred_lifetime":30,"valid_lifetime":60,"cltt":null,"expires":null}"#;
        let row = parse_lease_line(na).unwrap();
        assert_eq!(row.address, Some(a("fd00:1::1000")));
        assert_eq!(row.duid, [0, 1, 0, 1, 0x2a]);
        assert_eq!(row.iaid, 7);
        let pd = r#"{"type":"pd","prefix":"fd10::/56","duid":"0a0b","iaid":1,"state":"released"}"#;
        let row = parse_lease_line(pd).unwrap();
        assert_eq!(row.prefix, Some((a("fd10::"), 56)));
        assert_eq!(row.state, "released");
        assert_eq!(parse_lease_line(r#"{"type":"pd","duid":"0g"}"#), None);
        // A prefix handed to the failover secondary: no client yet.
        let backup =
            r#"{"type":"pd","prefix":"fd20:1::/56","duid":"","iaid":0,"state":"free_backup"}"#;
        let row = parse_lease_line(backup).unwrap();
        assert!(row.duid.is_empty());
        assert_eq!(row.state, "free_backup");
    }

    #[test]
    fn held_twice_names_leases_active_for_two_client_bindings_only() {
        let row = |kind: &str, lease: &str, duid: &str, iaid: u32, state: &str| {
            let key = if kind == "na" { "address" } else { "prefix" };
            parse_lease_line(&format!(
                r#"{{"type":"{kind}","{key}":"{lease}","duid":"{duid}","iaid":{iaid},"state":"{state}"}}"#
            ))
            .unwrap()
        };
        // The same binding in both tables of a pair, and a lease released by one client and
        // active for another: one holder each.
        let fine = [
            row("na", "fd00::1", "0a01", 1, "active"),
            row("na", "fd00::1", "0a01", 1, "active"),
            row("na", "fd00::2", "0a01", 1, "released"),
            row("na", "fd00::2", "0a02", 1, "active"),
            row("pd", "fd20::/56", "0a01", 2, "active"),
            row("pd", "fd20:0:100::/56", "", 0, "free_backup"),
            row("pd", "fd20:0:100::/56", "", 0, "free_backup"),
        ];
        assert_eq!(held_twice(&fine), Vec::<String>::new());
        // Two DUIDs, or one DUID under two IAIDs.
        let mut bad = fine.to_vec();
        bad.push(row("na", "fd00::1", "0a03", 1, "active"));
        bad.push(row("pd", "fd20::/56", "0a01", 3, "active"));
        assert_eq!(
            held_twice(&bad),
            [
                "na fd00::1 active for 2 clients: 0a01 IAID 1, 0a03 IAID 1",
                "pd fd20::/56 active for 2 clients: 0a01 IAID 2, 0a01 IAID 3"
            ]
        );
    }

    #[test]
    fn interpret_dhclient_per_ia_calls_accumulate_and_release_removes_one() {
        let text = "@@begin\nreason=BOUND6\nnew_ip6_address=2001:db8::10\n@@end\n\
                    @@begin\nreason=BOUND6\nnew_ip6_prefix=2001:db8:100::/56\n@@end\n\
                    @@begin\nreason=RELEASE6\nold_ip6_prefix=2001:db8:100::/56\n@@end\n";
        let r = interpret(parse_record(text), String::new());
        assert_eq!(r.addresses, [a("2001:db8::10")]);
        assert!(r.prefixes.is_empty(), "{r:?}");
    }

    #[test]
    fn interpret_dibbler_log_gives_rapid_commit_prefix() {
        let log = "37:04 Client Notice    PD: Adding prefix fd10:1:0:4800::/56 to all interfaces\n";
        let r = interpret(vec![], log.to_owned());
        assert_eq!(r.prefixes, [(a("fd10:1:0:4800::"), 56)]);
    }

    #[test]
    fn resolv_conf_servers_keeps_ipv6_nameservers_only() {
        let text = "# x\nnameserver 10.0.0.1\nnameserver fd00::53\nsearch example.net\n";
        assert_eq!(resolv_conf_servers(text), [a("fd00::53")]);
    }

    #[test]
    fn parse_cidr_rejects_overlong_length() {
        assert_eq!(parse_cidr("2001:db8::/129"), None);
        assert_eq!(parse_cidr("2001:db8::/64"), Some((a("2001:db8::"), 64)));
    }

    #[test]
    fn dhcp6c_config_requests_na_and_pd_with_matching_id_assocs() {
        let c = dhcp6c_config(
            "client0",
            Path::new("/x/record.sh"),
            &StatefulOptions::default(),
        );
        assert!(c.contains("send ia-na 0;"), "{c}");
        assert!(c.contains("send ia-pd 0;"), "{c}");
        assert!(c.contains("id-assoc na 0"), "{c}");
        assert!(c.contains("sla-len 8;"), "{c}");
    }

    #[test]
    fn dibbler_config_rapid_commit_only_when_asked() {
        let mut opts = StatefulOptions::default();
        let script = Path::new("/x/record.sh");
        assert!(!dibbler_config("c0", script, &opts).contains("rapid-commit"));
        opts.rapid_commit = true;
        assert!(dibbler_config("c0", script, &opts).contains("rapid-commit yes"));
    }

    #[test]
    fn client_configs_without_ias_ask_for_information_only() {
        let opts = StatefulOptions {
            ia_na: false,
            ia_pd: false,
            ..StatefulOptions::default()
        };
        let script = Path::new("/x/record.sh");
        let dhcpcd = dhcpcd_config("c0", &opts);
        assert!(dhcpcd.ends_with("interface c0\n  dhcp6\n"), "{dhcpcd}");
        let wide = dhcp6c_config("c0", script, &opts);
        assert!(wide.contains("  information-only;\n"), "{wide}");
        assert!(!wide.contains("ia-na") && !wide.contains("ia-pd"), "{wide}");
        assert!(!wide.contains("id-assoc"), "{wide}");
        let dibbler = dibbler_config("c0", script, &opts);
        assert!(
            !dibbler.contains("  ia\n") && !dibbler.contains("  pd\n"),
            "{dibbler}"
        );
        let both = dhcpcd_config("c0", &StatefulOptions::default());
        assert!(
            both.ends_with("interface c0\n  ia_na 1\n  ia_pd 2\n"),
            "{both}"
        );
    }
}
