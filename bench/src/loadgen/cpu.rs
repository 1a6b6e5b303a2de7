//! CPU accounting from procfs: a process's user+system time (all its threads) from
//! `/proc/<pid>/stat`, and each CPU's busy, idle, interrupt and steal time from `/proc/stat`,
//! to tell the server's cost per exchange and to flag foreign load on a shared machine
//! (docs/toolchain.md §1, "shared machine noise").

use std::collections::BTreeMap;
use std::fs;

use anyhow::Context as _;

/// utime + stime of a process, in clock ticks (`/proc/<pid>/stat` fields 14 and 15, which
/// include every thread of the process).
pub(crate) fn process_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_process_ticks(&text).with_context(|| format!("parsing {path}"))
}

/// `/proc/self/stat` as [`process_ticks`].
pub(crate) fn self_ticks() -> anyhow::Result<u64> {
    let text = fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    parse_process_ticks(&text).context("parsing /proc/self/stat")
}

/// utime + stime from the text of a `/proc/<pid>/stat`. The command name (field 2) is in
/// parentheses and may hold spaces and parentheses itself, so fields are counted after the
/// last `)`: state is field 3, utime 14, stime 15.
pub(crate) fn parse_process_ticks(text: &str) -> anyhow::Result<u64> {
    let rest = text
        .rfind(')')
        .and_then(|i| text.get(i + 1..))
        .context("no `)` after the command name")?;
    let mut fields = rest.split_whitespace();
    let field = |n: usize, fields: &mut std::str::SplitWhitespace<'_>| -> anyhow::Result<u64> {
        fields
            .nth(n)
            .context("too few fields")?
            .parse::<u64>()
            .context("not a number")
    };
    // After `)`: index 0 is field 3 (state), so utime (14) is index 11 and stime follows.
    let utime = field(11, &mut fields)?;
    let stime = field(0, &mut fields)?;
    Ok(utime + stime)
}

/// One CPU's counters from a `cpuN` line of `/proc/stat`, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    /// user + nice + system (guest time is already included in user).
    pub(crate) task: u64,
    /// irq + softirq (not charged to any process).
    pub(crate) irq: u64,
    /// idle + iowait.
    pub(crate) idle: u64,
    /// Time the hypervisor ran something else.
    pub(crate) steal: u64,
}

impl CpuTimes {
    fn total(self) -> u64 {
        self.task + self.irq + self.idle + self.steal
    }

    fn minus(self, before: Self) -> Self {
        Self {
            task: self.task.saturating_sub(before.task),
            irq: self.irq.saturating_sub(before.irq),
            idle: self.idle.saturating_sub(before.idle),
            steal: self.steal.saturating_sub(before.steal),
        }
    }
}

/// Every `cpuN` line of `/proc/stat`, by N.
pub(crate) fn machine() -> anyhow::Result<Vec<CpuTimes>> {
    let text = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_machine(&text)
}

/// Parses the `cpuN` lines (not the `cpu` total) of a `/proc/stat` text.
pub(crate) fn parse_machine(text: &str) -> anyhow::Result<Vec<CpuTimes>> {
    let mut cpus = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(name) = fields.next() else { continue };
        let Some(index) = name.strip_prefix("cpu") else {
            continue;
        };
        if index.is_empty() {
            continue;
        }
        let n: Vec<u64> = fields
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("bad /proc/stat line `{line}`"))?;
        let get = |i: usize| n.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal guest guest_nice
        cpus.push(CpuTimes {
            task: get(0) + get(1) + get(2),
            idle: get(3) + get(4),
            irq: get(5) + get(6),
            steal: get(7),
        });
    }
    anyhow::ensure!(!cpus.is_empty(), "no cpuN lines in /proc/stat");
    Ok(cpus)
}

/// A snapshot of everything measured, taken at the start and end of a run.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    /// Server process ticks.
    pub(crate) server: u64,
    /// This process's ticks (the generator).
    pub(crate) generator: u64,
    /// Per-CPU times.
    pub(crate) cpus: Vec<CpuTimes>,
    /// Ticks of every other process by pid, with its name (ksoftirqd threads left out: they
    /// carry our own packets).
    pub(crate) others: BTreeMap<u32, (String, u64)>,
}

impl Snapshot {
    /// Reads the server's, our own, everyone else's and the machine's counters.
    pub(crate) fn take(server_pid: u32) -> anyhow::Result<Self> {
        let me = std::process::id();
        let mut others = BTreeMap::new();
        for entry in fs::read_dir("/proc").context("listing /proc")?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == me || pid == server_pid {
                continue;
            }
            // Processes come and go: one that vanished since the listing is skipped.
            let Ok(text) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let name = text
                .find('(')
                .zip(text.rfind(')'))
                .and_then(|(a, b)| text.get(a + 1..b))
                .unwrap_or("?");
            if name.starts_with("ksoftirqd/") {
                continue;
            }
            if let Ok(t) = parse_process_ticks(&text) {
                others.insert(pid, (name.to_owned(), t));
            }
        }
        Ok(Self {
            server: process_ticks(server_pid)?,
            generator: self_ticks()?,
            cpus: machine()?,
            others,
        })
    }
}

/// CPU use over a run, in percent of one CPU (so 2 busy CPUs = 200 %).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CpuUse {
    /// Server process (all threads).
    pub(crate) server_pct: f64,
    /// Server CPU time, µs.
    pub(crate) server_us: f64,
    /// This process (the generator).
    pub(crate) generator_pct: f64,
    /// Each CPU's busy share (task + irq) of its non-steal time.
    pub(crate) busy_pct: Vec<f64>,
    /// irq + softirq over all CPUs (veth packet processing lands here).
    pub(crate) irq_pct: f64,
    /// Hypervisor steal over all CPUs.
    pub(crate) steal_pct: f64,
    /// Process time of anything but the server, the generator and ksoftirqd: foreign load.
    pub(crate) foreign_pct: f64,
    /// The biggest foreign consumer, `name (pct %)`, if any.
    pub(crate) top_foreign: Option<String>,
}

impl CpuUse {
    /// The difference of two snapshots `elapsed_s` seconds apart; `clk_tck` ticks per second.
    pub(crate) fn between(
        before: &Snapshot,
        after: &Snapshot,
        elapsed_s: f64,
        clk_tck: u64,
    ) -> Self {
        let tick_pct = |ticks: u64, total: f64| {
            if total > 0.0 {
                ticks as f64 * 100.0 / total
            } else {
                0.0
            }
        };
        let deltas: Vec<CpuTimes> = after
            .cpus
            .iter()
            .zip(&before.cpus)
            .map(|(a, b)| a.minus(*b))
            .collect();
        // Wall time in ticks (per-CPU totals lag on idle CPUs with NO_HZ).
        let per_cpu = elapsed_s * clk_tck as f64;
        let server = after.server.saturating_sub(before.server);
        let generator = after.generator.saturating_sub(before.generator);
        let mut foreign = 0;
        let mut top: Option<(&str, u64)> = None;
        for (pid, (name, t)) in &after.others {
            // A process started during the run counts in full; same pid, other name: reused
            // (a kworker renaming itself after its current work item is the same thread).
            let was = match before.others.get(pid) {
                Some((n, b)) if same_task(n, name) => *b,
                _ => 0,
            };
            let d = t.saturating_sub(was);
            foreign += d;
            if d > 0 && top.is_none_or(|(_, best)| d > best) {
                top = Some((name, d));
            }
        }
        Self {
            top_foreign: top.map(|(n, d)| format!("{n} ({:.1} %)", tick_pct(d, per_cpu))),
            server_pct: tick_pct(server, per_cpu),
            server_us: server as f64 * 1e6 / clk_tck.max(1) as f64,
            generator_pct: tick_pct(generator, per_cpu),
            busy_pct: deltas
                .iter()
                .map(|d| {
                    let on = d.total().saturating_sub(d.steal);
                    tick_pct(d.task + d.irq, on as f64)
                })
                .collect(),
            irq_pct: tick_pct(deltas.iter().map(|d| d.irq).sum(), per_cpu),
            steal_pct: tick_pct(deltas.iter().map(|d| d.steal).sum(), per_cpu),
            foreign_pct: tick_pct(foreign, per_cpu),
        }
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, USER_HZ; 100 if unknown).
pub(crate) fn clk_tck() -> u64 {
    // SAFETY: sysconf only reads a configuration value; no pointers are involved.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(100)
}

/// Whether two names seen for one pid belong to the same task: equal, or the same kernel
/// worker (`kworker/u8:5-writeback` and `kworker/u8:5-events_unbound`: kworkers append the
/// work item they are running to their name, so it changes from one snapshot to the next).
fn same_task(a: &str, b: &str) -> bool {
    let base = |n: &str| match n.strip_prefix("kworker/") {
        Some(rest) => rest.split_once('-').map_or(rest, |(id, _)| id).to_owned(),
        None => n.to_owned(),
    };
    a == b || (a.starts_with("kworker/") && b.starts_with("kworker/") && base(a) == base(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_ticks_with_parens_in_name_sums_utime_and_stime() {
        let stat = "4242 (tan dem) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    1234 567 0 0 20 0 3 0 100 1000 10 18446744073709551615";
        assert_eq!(parse_process_ticks(stat).unwrap(), 1234 + 567);
    }

    #[test]
    fn process_ticks_of_truncated_stat_is_error() {
        assert!(parse_process_ticks("1 (a) S 1 2 3").is_err());
        assert!(parse_process_ticks("no parens").is_err());
    }

    #[test]
    fn machine_reads_per_cpu_lines_only() {
        let text = "cpu  10 0 10 100 0 0 0 0 0 0\n\
                    cpu0 1 2 3 40 5 6 7 8 0 0\n\
                    cpu1 10 0 0 90 0 0 0 0 0 0\nintr 5\n";
        let cpus = parse_machine(text).unwrap();
        assert_eq!(
            cpus,
            vec![
                CpuTimes {
                    task: 6,
                    idle: 45,
                    irq: 13,
                    steal: 8
                },
                CpuTimes {
                    task: 10,
                    idle: 90,
                    irq: 0,
                    steal: 0
                },
            ]
        );
    }

    #[test]
    fn cpu_use_attributes_foreign_time() {
        let cpu = |task, irq, idle| CpuTimes {
            task,
            irq,
            idle,
            steal: 0,
        };
        let proc_ = |name: &str, t| (name.to_owned(), t);
        let before = Snapshot {
            server: 0,
            generator: 0,
            cpus: vec![cpu(0, 0, 0), cpu(0, 0, 0)],
            others: BTreeMap::from([(7, proc_("cargo", 50)), (8, proc_("sshd", 3))]),
        };
        // 1 s at 100 ticks/s; server 80, generator 90; cargo +15, sshd +0, a new rustc 5,
        // pid 8 reused by `bash` with 2 ticks.
        let after = Snapshot {
            server: 80,
            generator: 90,
            cpus: vec![cpu(95, 5, 0), cpu(95, 0, 5)],
            others: BTreeMap::from([
                (7, proc_("cargo", 65)),
                (8, proc_("bash", 2)),
                (9, proc_("rustc", 5)),
            ]),
        };
        let u = CpuUse::between(&before, &after, 1.0, 100);
        assert_eq!(u.server_pct, 80.0);
        assert_eq!(u.generator_pct, 90.0);
        assert_eq!(u.foreign_pct, 22.0);
        assert_eq!(u.top_foreign.as_deref(), Some("cargo (15.0 %)"));
        assert_eq!(u.irq_pct, 5.0);
        assert_eq!(u.busy_pct, vec![100.0, 95.0]);
        assert_eq!(u.server_us, 800_000.0);
    }

    #[test]
    fn same_task_ignores_kworker_work_item_suffix() {
        assert!(same_task(
            "kworker/u8:5-writeback",
            "kworker/u8:5-events_unbound"
        ));
        assert!(same_task("kworker/u8:5", "kworker/u8:5-flush-254:0"));
        assert!(!same_task(
            "kworker/u8:5-writeback",
            "kworker/u8:4-writeback"
        ));
        assert!(!same_task("sshd", "bash"));
        assert!(same_task("rustc", "rustc"));
    }

    #[test]
    fn cpu_use_counts_renamed_kworker_by_its_delta() {
        let cpu = CpuTimes {
            task: 0,
            irq: 0,
            idle: 0,
            steal: 0,
        };
        let before = Snapshot {
            server: 0,
            generator: 0,
            cpus: vec![cpu],
            others: BTreeMap::from([(5, ("kworker/u8:5-writeback".to_owned(), 400))]),
        };
        let after = Snapshot {
            server: 0,
            generator: 0,
            cpus: vec![cpu],
            others: BTreeMap::from([(5, ("kworker/u8:5-events_unbound".to_owned(), 403))]),
        };
        let u = CpuUse::between(&before, &after, 1.0, 100);
        assert_eq!(u.foreign_pct, 3.0);
    }

    #[test]
    fn own_process_ticks_are_readable() {
        let t0 = self_ticks().unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        // Spin until a tick is charged (10 ms at USER_HZ 100); 5 s is far more than enough
        // even on a loaded machine.
        while self_ticks().unwrap() == t0 && start.elapsed() < std::time::Duration::from_secs(5) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        assert!(self_ticks().unwrap() > t0, "spinning is charged to us");
    }
}
