//! `cargo xtask bench` without booting: the @@BENCH protocol, combining
//! boots, the baseline comparison, the goals, the results file, the tables,
//! the plots and the arguments.

use std::path::PathBuf;

use crate::bench::compare::{self, Comparison};
use crate::bench::goals::{self, Status};
use crate::bench::parse::{BenchLine, BootParser, parse_line};
use crate::bench::results::{self, BootResult, Combined, CpuResult, Figure, HostInfo, Report, Unit};
use crate::bench::{host, plot, table};
use crate::build::Profile;
use crate::cli::{Cli, Command, FirmwareArg};
use crate::judge::Exit;
use clap::Parser;

/// What a real `-smp 4` boot printed (QEMU 10.0 TCG), with some kernel
/// output around it.
const REAL_BOOT: &str = "\
[    0.140125 cpu0] INFO  kernel::boot: boot CPU up
@@BENCH-INFO\tcpus\t4\ttsc_mhz\t2721
@@BENCH\tfloor_pingpong\tns\t405\t1773\t2000
@@BENCH\tipi_roundtrip\tns\t56374\t7251126\t1000
@@BENCH\tcall_single_sync\tns\t74517\t10636754\t1000
@@BENCH\tasync_throughput_one_sender\tper_s\t32425\t32425\t1
@@BENCH\tasync_throughput_all_senders\tper_s\t819\t819\t1
@@BENCH\tcall_all_wait\tns\t107850\t5055616\t200
@@BENCH\tstop_machine_all\tns\t46742470\t187094285\t50
@@BENCH\thotplug_down\tns\t57794275\t80123607\t20
@@BENCH\thotplug_up\tns\t879217\t6387179\t20
@@BENCH\thotplug_cycle\tns\t58109209\t86209719\t20
@@BENCH\tbringup_one_by_one\tns\t6597054\t6597054\t1
@@BENCH\tbringup_parallel\tns\t3563908\t3563908\t1
@@BENCH-DONE";

const SUCCESS: Exit = Exit::Code(33);

fn parse_boot(text: &str, cpus: u32, exit: Exit) -> Result<BootResult, String> {
    let mut parser = BootParser::new(cpus);
    for line in text.lines() {
        parser.feed(line);
    }
    parser.finish(exit)
}

fn figure(name: &str, unit: Unit, median: f64, p99: f64, samples: u64) -> Figure {
    Figure { name: name.into(), unit, median, p99, samples }
}

fn ns(name: &str, median: f64) -> Figure {
    figure(name, Unit::Ns, median, median * 2.0, 100)
}

fn boot(cpus: u32, figures: Vec<Figure>) -> BootResult {
    BootResult { cpus, tsc_mhz: 2700, idle: None, figures }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-bench-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- the protocol ----

#[test]
fn parses_every_kind_of_line() {
    assert_eq!(
        parse_line("@@BENCH-INFO\tcpus\t4\ttsc_mhz\t2721"),
        Ok(Some(BenchLine::Info { cpus: 4, tsc_mhz: 2721, idle: None }))
    );
    assert_eq!(
        parse_line("@@BENCH-INFO\tcpus\t2\ttsc_mhz\t2457\tidle\tpoll"),
        Ok(Some(BenchLine::Info { cpus: 2, tsc_mhz: 2457, idle: Some("poll".into()) }))
    );
    assert_eq!(
        parse_line("@@BENCH\tcall_single_sync\tns\t74517\t10636754\t1000"),
        Ok(Some(BenchLine::Figure(figure("call_single_sync", Unit::Ns, 74517.0, 10636754.0, 1000))))
    );
    assert_eq!(
        parse_line("@@BENCH\tasync_throughput_one_sender\tper_s\t32425\t32425\t1"),
        Ok(Some(BenchLine::Figure(figure("async_throughput_one_sender", Unit::PerS, 32425.0, 32425.0, 1))))
    );
    assert_eq!(parse_line("@@BENCH-DONE"), Ok(Some(BenchLine::Done)));
    assert_eq!(
        parse_line("@@BENCH-INFO\terror\tneeds at least two CPUs"),
        Ok(Some(BenchLine::GuestError("needs at least two CPUs".into())))
    );
    for other in ["", "[ 0.1 cpu0] INFO hello", "@@KTEST BEGIN x", "BENCH\tx"] {
        assert_eq!(parse_line(other), Ok(None), "{other:?}");
    }
}

#[test]
fn malformed_lines_are_errors() {
    for bad in [
        "@@BENCH\tcall_single_sync\tns\t74517\t10636754",       // a field short
        "@@BENCH\tcall_single_sync\tns\t74517\t10636754\t1\t9", // a field too many
        "@@BENCH\tcall_single_sync\tus\t74517\t10636754\t1000", // unknown unit
        "@@BENCH\tcall_single_sync\tns\t74.5\t10636754\t1000",  // not whole
        "@@BENCH\tcall_single_sync\tns\t-1\t10636754\t1000",    // negative
        "@@BENCH\t\tns\t1\t1\t1",                               // no name
        "@@BENCH\tcall single\tns\t1\t1\t1",                    // a space in the name
        "@@BENCH call_single_sync ns 1 1 1",                    // spaces, not tabs
        "@@BENCHMARK\tx",                                       // unknown keyword
        "@@BENCH-INFO\tcpus\t4",                                // short info
        "@@BENCH-INFO\tcpus\tfour\ttsc_mhz\t2721",              // not a number
        "@@BENCH-INFO\tcpus\t4\ttsc_mhz\t2721\tidle",           // idle without a mode
        "@@BENCH-INFO\tcpus\t4\ttsc_mhz\t2721\tidle\t",         // an empty mode
        "@@BENCH-INFO\tcpus\t4\ttsc_mhz\t2721\tsleep\tpoll",    // unknown field
        "@@BENCH-INFO\terror",                                  // error without text
        "@@BENCH-DONE\textra",                                  // trailing field
    ] {
        let result = parse_line(bad);
        assert!(matches!(&result, Err(e) if e.contains("malformed")), "{bad:?} gave {result:?}");
    }
}

#[test]
fn a_real_boot_parses() {
    let boot = parse_boot(REAL_BOOT, 4, SUCCESS).unwrap();
    assert_eq!((boot.cpus, boot.tsc_mhz), (4, 2721));
    assert_eq!(boot.figures.len(), 12);
    assert_eq!(boot.figure("hotplug_cycle").unwrap().median, 58109209.0);
    assert_eq!(boot.figure("bringup_parallel").unwrap().samples, 1);
    // 74517 / 405
    let sync = boot.figure("call_single_sync").unwrap();
    assert!((boot.x_floor(sync).unwrap() - 183.99).abs() < 0.01);
    // A rate is compared as time per call: 1e9 / 32425 ns over the floor.
    let rate = boot.figure("async_throughput_one_sender").unwrap();
    assert!((boot.x_floor(rate).unwrap() - 1e9 / 32425.0 / 405.0).abs() < 1e-6);
}

#[test]
fn a_bad_boot_is_an_error() {
    let without_done = REAL_BOOT.replace("@@BENCH-DONE", "");
    let failing_line = REAL_BOOT.replace("\t58109209\t", "\t58109209x\t");
    let duplicated = REAL_BOOT.replace("@@BENCH-DONE", "@@BENCH\tfloor_pingpong\tns\t1\t1\t1\n@@BENCH-DONE");
    let after_done = format!("{REAL_BOOT}\n@@BENCH\textra\tns\t1\t1\t1");
    let before_info = "@@BENCH\tfloor_pingpong\tns\t1\t1\t1\n@@BENCH-INFO\tcpus\t4\ttsc_mhz\t2721\n@@BENCH-DONE";
    let guest_error = "@@BENCH-INFO\tcpus\t1\ttsc_mhz\t2721\n@@BENCH-INFO\terror\tneeds at least two CPUs";
    let cases: [(&str, u32, Exit, &str); 9] = [
        (&without_done, 4, SUCCESS, "before @@BENCH-DONE"),
        (&without_done, 4, Exit::TimedOut, "timed out"),
        (REAL_BOOT, 4, Exit::Code(35), "exited with failure"),
        (REAL_BOOT, 8, SUCCESS, "4 CPU(s) online, QEMU was given 8"),
        (&failing_line, 4, SUCCESS, "malformed"),
        (&duplicated, 4, SUCCESS, "twice"),
        (&after_done, 4, SUCCESS, "after @@BENCH-DONE"),
        (before_info, 4, SUCCESS, "before @@BENCH-INFO"),
        (guest_error, 1, Exit::Code(35), "needs at least two CPUs"),
    ];
    for (text, cpus, exit, why) in cases {
        let e = parse_boot(text, cpus, exit).expect_err(why);
        assert!(e.contains(why), "expected `{why}` in `{e}`");
    }
    assert!(parse_boot("no bench here", 4, SUCCESS).unwrap_err().contains("no @@BENCH-INFO"));
}

// ---- combining boots ----

#[test]
fn median_of_odd_even_and_none() {
    assert_eq!(results::median(&[3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(results::median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(results::median(&[7.0]), Some(7.0));
    assert_eq!(results::median(&[]), None);
}

#[test]
fn boots_combine_by_the_median_of_medians() {
    let boots = [
        boot(4, vec![ns("floor_pingpong", 100.0), ns("call_single_sync", 1000.0)]),
        boot(4, vec![ns("floor_pingpong", 200.0), ns("call_single_sync", 3000.0)]),
        boot(4, vec![ns("floor_pingpong", 400.0), ns("call_single_sync", 2000.0)]),
    ];
    let r = results::combine(&boots).unwrap();
    assert_eq!((r.cpus, r.runs, r.tsc_mhz), (4, 3, 2700));
    let sync = r.figure("call_single_sync").unwrap();
    assert_eq!(sync.median, 2000.0);
    assert_eq!(sync.p99, 4000.0);
    assert_eq!(sync.samples, 300);
    assert_eq!(sync.run_medians, vec![1000.0, 3000.0, 2000.0]);
    // Each boot's own ratio (10, 15, 5), then their median: not 2000/200.
    assert_eq!(sync.x_floor, Some(10.0));
    assert_eq!(r.figure("floor_pingpong").unwrap().x_floor, Some(1.0));
}

#[test]
fn an_unmeasured_figure_does_not_vote() {
    let boots = [
        boot(2, vec![ns("floor_pingpong", 100.0), ns("hotplug_cycle", 500.0)]),
        boot(2, vec![ns("floor_pingpong", 100.0), figure("hotplug_cycle", Unit::Ns, 0.0, 0.0, 0)]),
    ];
    let r = results::combine(&boots).unwrap();
    let cycle = r.figure("hotplug_cycle").unwrap();
    assert_eq!((cycle.median, cycle.samples), (500.0, 100));
    let none = results::combine(&[boot(2, vec![figure("hotplug_cycle", Unit::Ns, 0.0, 0.0, 0)])]).unwrap();
    assert!(!none.figure("hotplug_cycle").unwrap().measured());
    assert_eq!(none.median("hotplug_cycle"), None);
}

#[test]
fn mixed_boots_do_not_combine() {
    assert!(results::combine(&[]).is_err());
    assert!(results::combine(&[boot(2, vec![]), boot(4, vec![])]).unwrap_err().contains("2 and 4"));
    let units = [boot(2, vec![ns("x", 1.0)]), boot(2, vec![figure("x", Unit::PerS, 1.0, 1.0, 1)])];
    assert!(results::combine(&units).unwrap_err().contains("units"));
    let polling = BootResult { idle: Some("poll".into()), ..boot(2, vec![]) };
    assert!(results::combine(&[boot(2, vec![]), polling]).unwrap_err().contains("idled differently"));
}

// ---- results, goals and the baseline ----

fn combined(name: &str, unit: Unit, median: f64, x_floor: Option<f64>) -> Combined {
    Combined { name: name.into(), unit, median, p99: median * 3.0, samples: 10, x_floor, run_medians: vec![median] }
}

/// A CPU count with `figures` given as (name, median ns, x floor).
fn cpu_result(cpus: u32, figures: &[(&str, f64, Option<f64>)]) -> CpuResult {
    CpuResult {
        cpus,
        runs: 1,
        tsc_mhz: 2700,
        idle: None,
        figures: figures.iter().map(|&(n, m, x)| combined(n, Unit::Ns, m, x)).collect(),
    }
}

fn report(results: Vec<CpuResult>) -> Report {
    Report {
        schema: results::SCHEMA,
        date: "2026-11-21T13:47:24Z".into(),
        host: HostInfo {
            hostname: "h".into(),
            cpu_model: "cpu".into(),
            cores: 2,
            os: "Linux 6.1".into(),
            cpu_mhz: 2445.4,
            busy_before_pct: 3.0,
        },
        qemu: "QEMU emulator version 10.0.2".into(),
        firmware: "bios".into(),
        runs: 1,
        params: vec!["bench.run=1".into(), "smp.fast_start=1".into()],
        qemu_args: vec![],
        kernel: "guest-tests".into(),
        goals: goals::evaluate(&results),
        results,
    }
}

fn find<'a>(c: &'a [Comparison], name: &str) -> &'a Comparison {
    c.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("{name} not compared"))
}

#[test]
fn regressions_beyond_the_threshold_are_flagged() {
    let old = report(vec![CpuResult {
        figures: vec![
            combined("slower_30", Unit::Ns, 1000.0, None),
            combined("slower_20", Unit::Ns, 1000.0, None),
            combined("faster", Unit::Ns, 1000.0, None),
            combined("rate_down_30", Unit::PerS, 1000.0, None),
            combined("rate_up", Unit::PerS, 1000.0, None),
            combined("only_old", Unit::Ns, 1000.0, None),
        ],
        ..cpu_result(4, &[])
    }]);
    let new = report(vec![
        CpuResult {
            figures: vec![
                combined("slower_30", Unit::Ns, 1300.0, None),
                combined("slower_20", Unit::Ns, 1200.0, None),
                combined("faster", Unit::Ns, 500.0, None),
                combined("rate_down_30", Unit::PerS, 700.0, None),
                combined("rate_up", Unit::PerS, 2000.0, None),
                combined("only_new", Unit::Ns, 1000.0, None),
            ],
            ..cpu_result(4, &[])
        },
        // No baseline at this CPU count: nothing to compare.
        cpu_result(8, &[("slower_30", 9999.0, None)]),
    ]);
    let c = compare::compare(&old, &new, 25.0);
    assert_eq!(c.len(), 5, "{c:?}");
    let slower = find(&c, "slower_30");
    assert!(slower.regression);
    assert!((slower.ratio - 1.3).abs() < 1e-9);
    assert!(!find(&c, "slower_20").regression);
    assert!(!find(&c, "faster").regression);
    assert!((find(&c, "faster").ratio - 0.5).abs() < 1e-9);
    // A rate that falls is the regression; its ratio new/old is below 1.
    let rate = find(&c, "rate_down_30");
    assert!(rate.regression && rate.ratio < 1.0);
    assert!(!find(&c, "rate_up").regression);
    // The threshold moves the line.
    assert!(!find(&compare::compare(&old, &new, 35.0), "slower_30").regression);
    assert!(find(&compare::compare(&old, &new, 10.0), "slower_20").regression);
    let text = table::comparison_table(&c, 25.0);
    assert!(text.contains("REGRESSION (+30%)") && text.contains("2 regression(s) in 5 figure(s)"), "{text}");
}

#[test]
fn slowdown_is_unit_aware() {
    assert_eq!(compare::slowdown(Unit::Ns, 100.0, 150.0), 1.5);
    assert_eq!(compare::slowdown(Unit::PerS, 150.0, 100.0), 1.5);
    assert!(compare::is_regression(1.26, 25.0));
    assert!(!compare::is_regression(1.25, 25.0));
}

#[test]
fn growth_exponent_fits_the_sweep() {
    let linear = [(2, 1.0), (4, 2.0), (8, 4.0)];
    assert!((goals::growth_exponent(&linear).unwrap() - 1.0).abs() < 1e-9);
    assert!((goals::growth_per_doubling(&linear).unwrap() - 2.0).abs() < 1e-9);
    let sqrt = [(2, 10.0), (8, 20.0)];
    assert!((goals::growth_per_doubling(&sqrt).unwrap() - 2f64.sqrt()).abs() < 1e-9);
    assert_eq!(goals::growth_exponent(&[(4, 1.0)]), None);
    assert_eq!(goals::growth_exponent(&[(4, 1.0), (4, 2.0)]), None);
    assert_eq!(goals::growth_exponent(&[(2, 0.0), (4, 2.0)]), None);
}

fn status_of(results: &[goals::GoalResult], goal_starts: &str, cpus: Option<u32>) -> Status {
    results
        .iter()
        .find(|g| g.goal.starts_with(goal_starts) && g.cpus == cpus)
        .unwrap_or_else(|| panic!("no goal `{goal_starts}` for {cpus:?}"))
        .status
}

#[test]
fn goals_are_met_or_not_by_the_numbers() {
    let results = [
        cpu_result(
            2,
            &[
                ("call_single_sync", 3_000.0, Some(2.5)),
                ("call_single_busy", 40_000.0, None),
                ("hotplug_cycle", 1_000_000.0, None),
                ("bringup_parallel", 10_000_000.0, None),
                ("call_all_wait", 10_000.0, None),
                ("stop_machine_all", 10_000.0, None),
            ],
        ),
        cpu_result(
            4,
            &[
                ("call_single_sync", 4_000.0, Some(3.5)),
                ("call_single_busy", 60_000.0, None),
                ("call_all_busy", 700_000.0, None),
                ("hotplug_cycle", 2_000_000.0, None),
                ("bringup_parallel", 15_000_000.0, None),
                ("call_all_wait", 15_000.0, None),
                ("stop_machine_all", 25_000.0, None),
            ],
        ),
    ];
    let g = goals::evaluate(&results);
    assert_eq!(status_of(&g, "synchronous call >= 3x", Some(2)), Status::Met); // 3.0 <= 3.67 µs
    assert_eq!(status_of(&g, "synchronous call >= 3x", Some(4)), Status::NotMet); // 4.0 > 3.67 µs
    assert_eq!(status_of(&g, "synchronous call within 3x", Some(2)), Status::Met);
    assert_eq!(status_of(&g, "synchronous call within 3x", Some(4)), Status::NotMet);
    // Busy targets, against Linux's figures for the same workload.
    assert_eq!(status_of(&g, "synchronous call to a busy CPU", Some(2)), Status::Met); // 40 <= 48 µs
    assert_eq!(status_of(&g, "synchronous call to a busy CPU", Some(4)), Status::NotMet); // 60 > 48 µs
    assert_eq!(status_of(&g, "call to 3 busy CPUs", Some(4)), Status::Met); // 700 <= 715 µs
    assert_eq!(status_of(&g, "down+up hotplug", Some(2)), Status::Met); // 1 ms <= 1.25 ms
    assert_eq!(status_of(&g, "down+up hotplug", Some(4)), Status::NotMet);
    assert_eq!(status_of(&g, "bring-up of one AP", Some(2)), Status::Met); // 10 ms <= 14 ms
    assert_eq!(status_of(&g, "parallel bring-up sub-linear", None), Status::Met); // 1.5x
    assert_eq!(status_of(&g, "call to all CPUs", None), Status::Met); // 1.5x
    assert_eq!(status_of(&g, "stop-machine sub-linear", None), Status::NotMet); // 2.5x

    // Without 2 CPUs or a second count, the goals say so instead of passing.
    let only_four = goals::evaluate(&results[1..]);
    assert_eq!(status_of(&only_four, "bring-up of one AP", Some(2)), Status::NotMeasured);
    assert_eq!(status_of(&only_four, "stop-machine sub-linear", None), Status::NotMeasured);
    // An unmeasured figure is not a pass either.
    let empty = goals::evaluate(&[cpu_result(2, &[])]);
    assert!(empty.iter().all(|g| g.status == Status::NotMeasured), "{empty:?}");
    let text = table::goals_table(&g);
    assert!(text.contains("NOT MET") && text.contains("8 of 13 met"), "{text}");

    // What a call to an idle CPU costs depends on how it idles: the goals say which.
    let polling: Vec<CpuResult> =
        results.iter().map(|r| CpuResult { idle: Some("poll".into()), ..r.clone() }).collect();
    let sync = |g: &[goals::GoalResult]| g.iter().find(|g| g.goal.starts_with("synchronous call >= 3x")).cloned();
    assert_eq!(sync(&g).unwrap().measured, "3.00 µs, idle=halt");
    assert_eq!(sync(&goals::evaluate(&polling)).unwrap().measured, "3.00 µs, idle=poll");
}

#[test]
fn results_file_round_trips() {
    let r = report(vec![
        results::combine(&[parse_boot(REAL_BOOT, 4, SUCCESS).unwrap()]).unwrap(),
        cpu_result(2, &[("call_single_sync", 3000.5, None)]),
    ]);
    let back = Report::from_json(&r.to_json()).unwrap();
    assert_eq!(back, r);
    assert!(r.to_json().contains("\"status\": \"NOT MET\""));
    let dir = temp_dir("json");
    let path = dir.join("sub/b.json");
    r.save(&path).unwrap();
    assert_eq!(Report::load(&path).unwrap(), r);
    let newer = r.to_json().replace("\"schema\": 1", "\"schema\": 99");
    assert!(Report::from_json(&newer).is_err());
    assert!(Report::from_json("{}").is_err());
    let _ = std::fs::remove_dir_all(dir);
}

// ---- what is shown ----

#[test]
fn the_table_shows_microseconds_and_floor_ratios() {
    let r = results::combine(&[parse_boot(REAL_BOOT, 4, SUCCESS).unwrap()]).unwrap();
    let text = table::figures_table(&r, "bios");
    assert!(text.starts_with("== 4 CPUs (bios, 1 boot, guest TSC 2721 MHz, idle=halt) =="), "{text}");
    let row = |name: &str| text.lines().find(|l| l.starts_with(name)).unwrap().split_whitespace().collect::<Vec<_>>();
    assert_eq!(row("floor_pingpong"), ["floor_pingpong", "0.41", "1.77", "1.00x", "2000"]);
    assert_eq!(row("call_single_sync"), ["call_single_sync", "74.5", "10637", "184x", "1000"]);
    assert_eq!(row("async_throughput_one_sender")[1..3], ["32425", "calls/s"]);
    let two = results::combine(&[boot(
        2,
        vec![ns("call_all_wait", 50_000.0), ns("stop_machine_all", 1e6), ns("bringup_parallel", 2e6)],
    )])
    .unwrap();
    let scaling = table::scaling_table(&[r, two]);
    let call_all = scaling.lines().find(|l| l.starts_with("call_all_wait")).unwrap();
    // 50 → 107.85 µs from 2 to 4 CPUs: 2.16x per doubling.
    assert_eq!(call_all.split_whitespace().collect::<Vec<_>>(), ["call_all_wait", "50.0", "108", "2.16x"]);
}

#[test]
fn plots_are_written() {
    let dir = temp_dir("plots");
    let four = results::combine(&[parse_boot(REAL_BOOT, 4, SUCCESS).unwrap()]).unwrap();
    let two = cpu_result(
        2,
        &[("call_all_wait", 50_000.0, None), ("stop_machine_all", 1e6, None), ("bringup_parallel", 2e6, None)],
    );
    let latency = dir.join("latency-smp4.svg");
    plot::latency_svg(&four, &latency).unwrap();
    let svg = std::fs::read_to_string(&latency).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    assert!(svg.contains("call_single_sync") && svg.contains("<rect"), "bars and their labels");
    // Rates have no place on a time axis.
    assert!(!svg.contains("async_throughput"));
    assert_eq!(plot::latency_bars(&four).len(), 10);
    // A narrow range gets a linear axis, and still a plot.
    let narrow = cpu_result(2, &[("a", 1000.0, None), ("b", 2000.0, None)]);
    plot::latency_svg(&narrow, &dir.join("narrow.svg")).unwrap();
    assert!(std::fs::read_to_string(dir.join("narrow.svg")).unwrap().contains("<svg"));
    plot::latency_svg(&cpu_result(2, &[("alone", 1000.0, None)]), &dir.join("one-bar.svg")).unwrap();
    assert!(plot::latency_svg(&cpu_result(2, &[]), &dir.join("none.svg")).is_err(), "nothing to plot");

    let scaling = dir.join("scaling.svg");
    plot::scaling_svg(&[four.clone(), two], &scaling).unwrap();
    let svg = std::fs::read_to_string(&scaling).unwrap();
    assert!(svg.contains("<svg") && svg.contains("stop_machine_all") && svg.contains("<circle"), "{svg}");
    assert!(plot::scaling_svg(&[four], &dir.join("one.svg")).is_err(), "one CPU count is no scaling");
    let _ = std::fs::remove_dir_all(dir);
}

// ---- arguments ----

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("cargo-xtask").chain(args.iter().copied()))
}

#[test]
fn bench_arguments() {
    let Command::Bench(b) = parse(&["bench"]).unwrap().command else { panic!() };
    assert_eq!(b.smp.0, [2, 4]);
    assert_eq!((b.firmware, b.runs, b.threshold), (FirmwareArg::Bios, 1, 25.0));
    assert!(b.out.is_none() && b.baseline.is_none() && b.save_baseline.is_none() && !b.fail_on_regression);
    assert_eq!(b.profile, Profile::Release, "a benchmark measures the optimised kernel by default");
    let Command::Bench(b) = parse(&["bench", "--profile", "dev"]).unwrap().command else { panic!() };
    assert_eq!(b.profile, Profile::Dev);
    let Command::Bench(b) = parse(&[
        "bench",
        "--smp",
        "8,2,4,2",
        "--runs",
        "3",
        "--firmware",
        "uefi",
        "--baseline",
        "/tmp/b.json",
        "--threshold",
        "10",
        "--fail-on-regression",
        "-p",
        "smp.fast_start=0",
        "--",
        "-d",
        "int",
    ])
    .unwrap()
    .command
    else {
        panic!()
    };
    assert_eq!(b.smp.0, [2, 4, 8]);
    assert_eq!((b.runs, b.firmware, b.threshold), (3, FirmwareArg::Uefi, 10.0));
    assert!(b.fail_on_regression);
    assert_eq!(b.params, [("smp.fast_start".to_owned(), "0".to_owned())]);
    assert_eq!(b.qemu_args, ["-d", "int"]);
    for bad in [
        &["bench", "--smp", "1,2"][..],
        &["bench", "--smp", "2,x"],
        &["bench", "--runs", "0"],
        &["bench", "-p", "bench.run=0"],
        &["bench", "-p", "smp.expect_cpus=3"],
        &["bench", "--fail-on-regression"],
        &["bench", "--threshold", "-5"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} should be rejected");
    }
}

// ---- host facts ----

#[test]
fn host_caveats_and_dates() {
    assert_eq!(host::iso_date(0), "1970-01-01T00:00:00Z");
    assert_eq!(host::iso_date(1_795_268_844), "2026-11-21T13:47:24Z");
    // The guest read 10% more ticks per µs than there are: its times are 10% low.
    let note = host::tsc_note(2445.0, 2717, 4).unwrap();
    assert!(note.contains("10% too low"), "{note}");
    assert!(host::tsc_note(2445.0, 2453, 2).is_none());
    assert!(host::tsc_note(0.0, 2453, 2).is_none());
    let busy = HostInfo { cores: 2, busy_before_pct: 60.0, ..HostInfo::default() };
    assert_eq!(host::caveats(&busy).len(), 1);
    assert!(host::caveats(&HostInfo { cores: 2, busy_before_pct: 4.0, ..HostInfo::default() }).is_empty());
    let busy = host::busy_pct(std::time::Duration::from_millis(100)).expect("Linux has /proc/stat");
    assert!((0.0..=100.0).contains(&busy), "{busy}");
}
