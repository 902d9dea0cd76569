//! Resident memory and catch-up speed of a devstore holding millions of events.
//!
//! ```sh
//! cargo build --release -p devstore --bins --examples
//! target/release/examples/memory [--events N] [--runs R] [--catch-ups C] [--memory] DEVSTORE...
//! ```
//!
//! Each `DEVSTORE` is a `devstore` binary (say this build's and one built from an older
//! commit); the runs take them in turn, so both see the same machine. Each run, per binary:
//! 1. starts it with `--data` in a fresh temporary directory (or `--memory`), on a free port;
//! 2. appends N events (default 5,000,000) of ~300 bytes of JSON through the official client:
//!    appends of 500 events to 1,000 streams, from 4 concurrent tasks;
//! 3. reads the server's `VmRSS` (resident now) and `VmHWM` (resident peak) from
//!    `/proc/PID/status`: "written";
//! 4. times a `$all` subscription from the start until `caught_up` ("catch-up, warm": the
//!    server just wrote these events), C times (default 3) one after the other, keeping the
//!    median (on a shared machine one run can land on someone else's burst), with the server's
//!    CPU time per event (user + system, from `/proc/PID/stat`), and reads the memory again;
//! 5. with `--data`: stops it with SIGTERM, starts it again on the same directory (the time
//!    until it serves is "load"), reads the memory ("loaded"), times the catch-up again ("catch-up
//!    after restart") and reads the memory once more.
//!
//! It prints every figure of every run, then the median of each figure per binary.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use eventstore::{Client, EventData};

/// Events per append.
const BATCH: usize = 500;
/// Streams the events are spread over.
const STREAMS: usize = 1_000;
/// Concurrent appending tasks.
const WRITERS: usize = 4;

/// What the command line asks for.
struct Options {
    /// Events to store.
    events: usize,
    /// Rounds over all binaries.
    runs: usize,
    /// Catch-ups timed per server state; the median is kept.
    catch_ups: usize,
    /// Run the servers in memory instead of with `--data`.
    memory: bool,
    /// The `devstore` binaries to measure.
    binaries: Vec<PathBuf>,
}

/// One run's figures for one binary, in the order they are printed.
#[derive(Default)]
struct Figures(Vec<(&'static str, f64)>);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let mut all: Vec<Vec<Figures>> = options.binaries.iter().map(|_| Vec::new()).collect();
    for run in 1..=options.runs {
        for (binary, figures) in options.binaries.iter().zip(&mut all) {
            let measured = measure(binary, &options).await?;
            println!("run {run}, {}:", binary.display());
            for (name, value) in &measured.0 {
                println!("  {name}: {value:.1}");
            }
            figures.push(measured);
        }
    }
    println!(
        "\nmedians of {} runs, {} events:",
        options.runs, options.events
    );
    for (binary, figures) in options.binaries.iter().zip(&all) {
        println!("{}:", binary.display());
        let names: Vec<&str> = figures[0].0.iter().map(|(name, _)| *name).collect();
        for (slot, name) in names.iter().enumerate() {
            let mut values: Vec<f64> = figures.iter().map(|run| run.0[slot].1).collect();
            println!("  {name}: {:.1}", common::median(&mut values));
        }
    }
    Ok(())
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        events: 5_000_000,
        runs: 1,
        catch_ups: 3,
        memory: false,
        binaries: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => options.events = args.next().context("--events N")?.parse()?,
            "--runs" => options.runs = args.next().context("--runs R")?.parse()?,
            "--catch-ups" => options.catch_ups = args.next().context("--catch-ups C")?.parse()?,
            "--memory" => options.memory = true,
            _ => options.binaries.push(PathBuf::from(arg)),
        }
    }
    if options.binaries.is_empty() {
        bail!("usage: memory [--events N] [--runs R] [--catch-ups C] [--memory] DEVSTORE...");
    }
    Ok(options)
}

/// One run against one binary.
async fn measure(binary: &Path, options: &Options) -> anyhow::Result<Figures> {
    let data = tempfile::tempdir()?;
    let mut figures = Figures::default();
    let started = Instant::now();
    let server = Running::start(binary, (!options.memory).then_some(data.path()))?;
    figures.add("start (s)", started.elapsed().as_secs_f64());
    let client = server.client()?;
    let started = Instant::now();
    append(&client, options.events).await?;
    figures.add(
        "appended events/s",
        options.events as f64 / started.elapsed().as_secs_f64(),
    );
    figures.memory("written", server.pid())?;
    let (rate, cpu) = catch_ups(&client, server.pid(), options.catch_ups).await?;
    figures.add("catch-up events/s, warm", rate);
    figures.add("catch-up server CPU ns/event, warm", cpu);
    figures.memory("after catch-up", server.pid())?;
    if options.memory {
        return Ok(figures);
    }
    server.stop()?;
    let db = std::fs::metadata(data.path().join("events.db"))?.len();
    figures.add("events.db (MiB)", db as f64 / (1 << 20) as f64);
    let started = Instant::now();
    let server = Running::start(binary, Some(data.path()))?;
    figures.add("load (s)", started.elapsed().as_secs_f64());
    figures.memory("loaded", server.pid())?;
    let client = server.client()?;
    let (rate, cpu) = catch_ups(&client, server.pid(), options.catch_ups).await?;
    figures.add("catch-up events/s, after restart", rate);
    figures.add("catch-up server CPU ns/event, after restart", cpu);
    figures.memory("after restart and catch-up", server.pid())?;
    server.stop()?;
    Ok(figures)
}

impl Figures {
    fn add(&mut self, name: &'static str, value: f64) {
        self.0.push((name, value));
    }

    /// The server's resident memory now and at its peak, in MiB.
    fn memory(&mut self, when: &'static str, pid: u32) -> anyhow::Result<()> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib = |field: &str| -> anyhow::Result<f64> {
            let line = status
                .lines()
                .find(|line| line.starts_with(field))
                .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
            let value: f64 = line[field.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()?;
            Ok(value)
        };
        let rss = kib("VmRSS:")? / 1024.0;
        let peak = kib("VmHWM:")? / 1024.0;
        self.add(leak(format!("VmRSS {when} (MiB)")), rss);
        self.add(leak(format!("VmHWM {when} (MiB)")), peak);
        Ok(())
    }
}

/// A figure's name lives as long as the program; there are a handful of them.
fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

/// A devstore process.
struct Running {
    child: Child,
    /// Where it listens.
    address: String,
}

impl Running {
    /// Starts `binary` on a free port, with `--data DIR` or in memory, and waits until it
    /// serves (it prints its address once it listens, after loading the log).
    fn start(binary: &Path, data: Option<&Path>) -> anyhow::Result<Running> {
        let mut command = Command::new(binary);
        command.args(["--listen", "127.0.0.1:0"]);
        match data {
            Some(dir) => command.arg("--data").arg(dir),
            None => command.arg("--memory"),
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        // It prints more later; a closed pipe would fail those prints.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        // "devstore 24.10.0 listening on 127.0.0.1:PORT, events kept ..."
        let address = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .with_context(|| format!("unexpected first line {line:?}"))?
            .to_owned();
        Ok(Running { child, address })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn client(&self) -> anyhow::Result<Client> {
        let settings = format!("esdb://{}?tls=false&discoveryInterval=0", self.address);
        Ok(Client::new(settings.parse()?)?)
    }

    /// Stops it as a service manager would (SIGTERM: it flushes and closes the database).
    fn stop(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill failed");
        let exit = self.child.wait()?;
        anyhow::ensure!(exit.success(), "devstore exited with {exit}");
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only if a run failed halfway: a stopped child has been waited for already.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Appends `events` events from [`WRITERS`] tasks.
async fn append(client: &Client, events: usize) -> anyhow::Result<()> {
    let batches = events.div_ceil(BATCH);
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for index in (writer..batches).step_by(WRITERS) {
                let size = BATCH.min(events - index * BATCH);
                client
                    .append_to_stream(
                        format!("memory-{}", index % STREAMS).as_str(),
                        &Default::default(),
                        batch(size),
                    )
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// The median of `times` [`catch_up`]s.
/// The median of `times` [`catch_up`]s: events per second, and the CPU time the server (`pid`)
/// spent per event delivered. On a shared machine the rate depends on what else runs; the CPU
/// time much less.
async fn catch_ups(client: &Client, pid: u32, times: usize) -> anyhow::Result<(f64, f64)> {
    let mut rates = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..times.max(1) {
        let before = cpu_seconds(pid)?;
        let (rate, delivered) = common::catch_up(client, Duration::from_secs(600)).await?;
        let spent = cpu_seconds(pid)? - before;
        rates.push(rate);
        cpu.push(spent * 1e9 / delivered as f64);
    }
    Ok((common::median(&mut rates), common::median(&mut cpu)))
}

/// User and system CPU time of process `pid` so far, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the command name (in parentheses, which may hold spaces): state is field 3, utime
    // and stime fields 14 and 15, in clock ticks.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("unexpected /proc/PID/stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / clock_ticks_per_second()?)
}

/// `getconf CLK_TCK`: the unit of the times in `/proc/PID/stat` (100 on Linux).
fn clock_ticks_per_second() -> anyhow::Result<f64> {
    let output = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(output.stdout)?.trim().parse()?)
}

/// `size` JSON events of about 300 bytes of payload each (as in `bench.rs`).
fn batch(size: usize) -> Vec<EventData> {
    (0..size)
        .map(|index| {
            let payload = serde_json::json!({
                "index": index,
                "customer": "c-0123456789abcdef",
                "note": "x".repeat(240),
            });
            EventData::json("BenchEvent", &payload).expect("serialisable")
        })
        .collect()
}
