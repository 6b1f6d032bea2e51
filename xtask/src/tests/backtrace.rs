//! Backtraces: the `@@BT` lines, their symbolization (on this very test
//! binary: no kernel ELF needed), the live rewriting of a byte stream, and
//! the judge's check of a test's required backtrace.

use std::rc::Rc;
use std::time::Duration;

use crate::backtrace::{LiveFilter, SourceFrame, Symbols, is_test_kernel_log, no_symbols, render, symbolize_log};
use crate::judge::{BootReport, Exit, Outcome, judge_with_symbols};
use crate::protocol::{BtLine, Expect, TestInfo, parse_backtrace_line, parse_line};
use crate::symbols::Symbolizer;

const BASE: u64 = 0xffff_8000_0000_0000;

/// A made-up kernel: ELF address → frames (innermost first).
fn fake_symbols() -> Rc<dyn Symbols> {
    Rc::new(|elf: u64| match elf {
        0x100 => vec![SourceFrame::new("core::panicking::panic_fmt", "/rustc/x/library/core/src/panicking.rs", 80)],
        0x200 => vec![SourceFrame::new("guest_tests::debug::deep_three", "tests/guest/src/debug.rs", 61)],
        // deep_two with something inlined into it.
        0x300 => vec![
            SourceFrame::new("core::hint::black_box", "/rustc/x/library/core/src/hint.rs", 9),
            SourceFrame::new("guest_tests::debug::deep_two", "tests/guest/src/debug.rs", 66),
        ],
        0x400 => vec![SourceFrame::new("guest_tests::debug::deep_one", "tests/guest/src/debug.rs", 72)],
        // A function known only from the symbol table.
        0x500 => vec![SourceFrame { function: Some("guest_tests::debug::deep_one".into()), file: None, line: None }],
        _ => Vec::new(),
    })
}

fn bt(cpu: u32, depth: u32, elf: u64) -> String {
    format!("@@BT\t{cpu}\t{depth}\t{:#x}\t{BASE:#x}", BASE + elf)
}

#[test]
fn backtrace_lines_parse() {
    assert_eq!(
        parse_backtrace_line("@@BT\t3\t2\t0xffff80000003c4b8\t0xffff800000000000\r"),
        Ok(Some(BtLine::Frame { cpu: 3, depth: 2, address: 0xffff_8000_0003_c4b8, base: BASE }))
    );
    assert_eq!(
        parse_backtrace_line("@@BT-END\t0\tframe chain corrupt at 0x1234; walk stopped"),
        Ok(Some(BtLine::End { cpu: 0, why: "frame chain corrupt at 0x1234; walk stopped".into() }))
    );
    for other in ["@@KTEST BEGIN\ta", "[ 0.1 cpu0] INFO @@BT", " @@BT\t0\t0\t0x1\t0x0", "@@BTX"] {
        assert_eq!(parse_backtrace_line(other), Ok(None), "{other:?}");
    }
    for bad in [
        "@@BT\t0\t0\t0x1",
        "@@BT\t0\t0\t0x1\t0x0\t0x0",
        "@@BT\tcpu0\t0\t0x1\t0x0",
        "@@BT\t0\t0\t1234\t0x0",
        "@@BT\t0\t0\t0xzz\t0x0",
        "@@BT-END\tx\tbottom",
    ] {
        assert!(parse_backtrace_line(bad).is_err(), "{bad:?}");
    }
    // Not @@KTEST lines: the test protocol parser leaves them alone.
    assert_eq!(parse_line(&bt(0, 0, 0x100)), Ok(None));
}

#[test]
fn list_lines_carry_the_required_backtrace() {
    let line = "@@KTEST LIST\tdebug::p\tfresh=1\tmin_cpus=1\ttimeout_ms=1\texpect=panic\texample=0\tparams=\tmessage=deep\tbacktrace=deep_three,deep_two,deep_one";
    let Ok(Some(crate::protocol::Event::List(t))) = parse_line(line) else { panic!("{line}") };
    assert_eq!(t.backtrace, ["deep_three", "deep_two", "deep_one"]);
    assert_eq!(t.list_line(), line, "round trip");
    // Empty, and absent (an older kernel): no requirement.
    let Ok(Some(crate::protocol::Event::List(t))) = parse_line(&line.replace("deep_three,deep_two,deep_one", ""))
    else {
        panic!()
    };
    assert!(t.backtrace.is_empty());
    let old = line.split("\tbacktrace=").next().unwrap();
    let Ok(Some(crate::protocol::Event::List(t))) = parse_line(old) else { panic!() };
    assert!(t.backtrace.is_empty());
}

#[test]
fn frames_render_as_function_at_file_line() {
    let s = fake_symbols();
    assert_eq!(
        render(&bt(0, 1, 0x200), s.as_ref()),
        ["  cpu0 #1 0xffff800000000200 guest_tests::debug::deep_three at tests/guest/src/debug.rs:61"]
    );
    let inlined = render(&bt(2, 2, 0x300), s.as_ref());
    assert_eq!(inlined.len(), 2);
    assert_eq!(inlined[0], "  cpu2 #2 0xffff800000000300 core::hint::black_box at /rustc/x/library/core/src/hint.rs:9");
    assert!(inlined[1].trim_start().starts_with("inlined into guest_tests::debug::deep_two at"), "{}", inlined[1]);
    assert_eq!(render(&bt(0, 3, 0x999), s.as_ref()), ["  cpu0 #3 0xffff800000000999 ??"]);
    assert_eq!(
        render("@@BT\t1\t0\t0x1000\t0xffff800000000000", s.as_ref()),
        ["  cpu1 #0 0x1000 ??"],
        "below the kernel base: not looked up"
    );
    assert_eq!(
        render("@@BT-END\t1\tbottom of the stack", s.as_ref()),
        ["  cpu1 end of backtrace: bottom of the stack"]
    );
    assert_eq!(render("plain line", s.as_ref()), ["plain line"]);
    assert_eq!(render("@@BT\tgarbage", s.as_ref()), ["@@BT\tgarbage"], "malformed: shown raw");
}

#[test]
fn live_filter_rewrites_only_backtrace_lines_and_holds_nothing_else() {
    let s = fake_symbols();
    let mut f = LiveFilter::default();
    // A prompt without a newline passes at once.
    assert_eq!(f.push(b"login: ", s.as_ref()), b"login: ");
    assert_eq!(f.push(b"x\r\n@@", s.as_ref()), b"x\r\n", "a possible @@BT is held");
    assert_eq!(f.push(b"KTEST BEGIN\ta\n", s.as_ref()), b"@@KTEST BEGIN\ta\n");
    let line = format!("{}\r\n", bt(0, 1, 0x200));
    let (a, b) = line.as_bytes().split_at(7);
    assert!(f.push(a, s.as_ref()).is_empty());
    assert_eq!(
        String::from_utf8(f.push(b, s.as_ref())).unwrap(),
        "  cpu0 #1 0xffff800000000200 guest_tests::debug::deep_three at tests/guest/src/debug.rs:61\r\n"
    );
    assert_eq!(f.push(b"@@B", s.as_ref()), b"");
    assert_eq!(f.finish(), b"@@B", "the stream ended inside a held line");
}

#[test]
fn saved_logs_are_symbolized_and_recognized() {
    let log = format!("# qemu ...\n{}\r\n@@BT-END\t0\tbottom of the stack\nbye\n", bt(0, 0, 0x400));
    assert_eq!(
        symbolize_log(&log, fake_symbols().as_ref()),
        "# qemu ...\n  cpu0 #0 0xffff800000000400 guest_tests::debug::deep_one at tests/guest/src/debug.rs:72\n  \
         cpu0 end of backtrace: bottom of the stack\nbye\n"
    );
    assert!(!is_test_kernel_log(&log));
    assert!(is_test_kernel_log("boot\n@@KTEST BEGIN\ta\n"));
}

/// Where the kernel's panic handler prints: the panicking CPU's trace, the
/// others', then the PANIC line.
fn panic_transcript(cpu0_frames: &[u64]) -> String {
    let mut t = String::from("@@KTEST BEGIN\tdebug::p\n");
    for (depth, elf) in cpu0_frames.iter().enumerate() {
        t += &bt(0, depth as u32, *elf);
        t.push('\n');
    }
    t += "@@BT-END\t0\tbottom of the stack\n";
    // Another CPU's trace names everything, but it is not the panicking one.
    for (depth, elf) in [0x200, 0x300, 0x400].iter().enumerate() {
        t += &bt(1, depth as u32, *elf);
        t.push('\n');
    }
    t += "@@BT-END\t1\tbottom of the stack\n";
    t += "@@KTEST PANIC\t0\tthree calls deep at tests/guest/src/debug.rs:61; all other CPUs stopped\n";
    t
}

fn panic_test(backtrace: &[&str]) -> TestInfo {
    let mut t = TestInfo::new("debug::p");
    t.expect = Expect::Panic;
    t.message = "three calls deep".into();
    t.backtrace = backtrace.iter().map(|s| s.to_string()).collect();
    t
}

fn judged(test: &TestInfo, transcript: &str) -> BootReport {
    let lines = transcript.lines().map(|l| (Duration::ZERO, l));
    judge_with_symbols(std::slice::from_ref(test), lines, Exit::Code(35), Duration::from_secs(1), fake_symbols())
}

fn failure(report: &BootReport) -> String {
    match &report.verdicts[0].outcome {
        Outcome::Failed(why) => why.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

const DEEP: [&str; 3] = ["deep_three", "deep_two", "deep_one"];

#[test]
fn required_backtrace_present_in_order_passes() {
    // Frames in between (panic_fmt, the inlined black_box) are allowed.
    let r = judged(&panic_test(&DEEP), &panic_transcript(&[0x100, 0x200, 0x300, 0x400, 0x999]));
    assert_eq!(r.verdicts[0].outcome, Outcome::Passed, "{r:#?}");
    assert!(r.boot_failures.is_empty(), "{:?}", r.boot_failures);
    let trace = r.crash_trace.expect("the crashing CPU's trace is reported");
    assert_eq!((trace.cpu, trace.frames.len()), (0, 5));
    assert_eq!(trace.end.as_deref(), Some("bottom of the stack"));
}

#[test]
fn a_missing_function_fails_naming_it() {
    let why = failure(&judged(&panic_test(&DEEP), &panic_transcript(&[0x100, 0x200, 0x400])));
    assert!(why.contains("does not name `deep_two` after `deep_three`"), "{why}");
    assert!(why.contains("deep_one"), "says what it showed: {why}");
}

#[test]
fn functions_out_of_order_fail() {
    let why = failure(&judged(&panic_test(&DEEP), &panic_transcript(&[0x400, 0x300, 0x200])));
    assert!(why.contains("does not name `deep_two` after `deep_three`"), "{why}");
}

#[test]
fn a_frame_without_file_and_line_fails() {
    let why = failure(&judged(&panic_test(&DEEP), &panic_transcript(&[0x200, 0x300, 0x500])));
    assert!(why.contains("`deep_one`") && why.contains("without a file and line"), "{why}");
}

#[test]
fn no_backtrace_or_only_other_cpus_or_an_earlier_one_fails() {
    let why = failure(&judged(&panic_test(&DEEP), &panic_transcript(&[])));
    assert!(why.contains("no backtrace of cpu 0"), "{why}");
    // A full trace of cpu 0 printed before the test began does not count.
    let early = format!("{}\n{}\n{}\n{}", bt(0, 0, 0x200), bt(0, 1, 0x300), bt(0, 2, 0x400), panic_transcript(&[]));
    let why = failure(&judged(&panic_test(&DEEP), &early));
    assert!(why.contains("no backtrace of cpu 0"), "{why}");
}

#[test]
fn without_a_requirement_or_symbols_the_old_rules_hold() {
    let r = judged(&panic_test(&[]), &panic_transcript(&[]));
    assert_eq!(r.verdicts[0].outcome, Outcome::Passed);
    // A requirement but no symbols at all: cannot be checked, so it fails.
    let lines = panic_transcript(&[0x200, 0x300, 0x400]);
    let lines = lines.lines().map(|l| (Duration::ZERO, l));
    let r = judge_with_symbols(&[panic_test(&DEEP)], lines, Exit::Code(35), Duration::from_secs(1), no_symbols());
    let why = failure(&r);
    assert!(why.contains("`deep_three`") && why.contains("no symbols"), "{why}");
}

#[test]
fn malformed_backtrace_lines_are_protocol_errors() {
    let t = TestInfo::new("a");
    let r = judged(&t, "@@KTEST BEGIN\ta\n@@BT\t0\tx\n@@KTEST PASS\ta\t1\n");
    assert!(r.boot_failures.iter().any(|f| f.contains("protocol error") && f.contains("@@BT")), "{r:#?}");
}

// --- Real symbols: this test binary's own DWARF. ---

#[inline(never)]
fn a_function_to_find() -> u64 {
    std::hint::black_box(42)
}

/// Where this executable is mapped: the start of its mapping at file
/// offset 0 (the ELF is position-independent, its first segment at 0).
fn load_base() -> u64 {
    let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 6 && std::path::Path::new(fields[5]) == exe && u64::from_str_radix(fields[2], 16) == Ok(0) {
            let start = fields[0].split('-').next().unwrap();
            return u64::from_str_radix(start, 16).unwrap();
        }
    }
    panic!("{} not in /proc/self/maps", exe.display());
}

#[test]
fn symbolizes_a_function_of_this_binary() {
    let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
    let header = std::fs::read(&exe).unwrap();
    // ET_DYN: addresses in the file are offsets from the load base.
    assert_eq!(u16::from_le_bytes([header[16], header[17]]), 3, "expected a position-independent executable");
    assert_eq!(a_function_to_find(), 42);
    let runtime = a_function_to_find as fn() -> u64 as usize as u64;
    let elf = runtime - load_base();
    let symbolizer = Symbolizer::load(&exe).unwrap();
    let frames = symbolizer.lookup(elf);
    let outer = frames.last().unwrap_or_else(|| panic!("nothing at {elf:#x}"));
    assert_eq!(outer.function.as_deref(), Some("xtask::tests::backtrace::a_function_to_find"), "{frames:?}");
    assert_eq!(outer.file.as_deref(), Some("xtask/src/tests/backtrace.rs"), "relative to the workspace");
    assert!(outer.line.is_some_and(|l| l > 0), "{frames:?}");
    // Far outside the image: nothing, and no panic.
    assert!(symbolizer.lookup(u64::MAX - 16).iter().all(|f| f.file.is_none()));
}

#[test]
fn symbolize_command_line() {
    use crate::cli::{Cli, Command};
    use clap::Parser;
    let parse = |args: &[&str]| Cli::try_parse_from(["cargo-xtask", "symbolize"].iter().chain(args).copied());
    let Command::Symbolize(a) = parse(&["log.txt"]).unwrap().command else { panic!() };
    assert_eq!(a.file.to_str(), Some("log.txt"));
    assert!(a.kernel.is_none() && !a.test_kernel && !a.demo_kernel, "the kernel is guessed from the log");
    let Command::Symbolize(a) = parse(&["-", "--kernel", "k.elf"]).unwrap().command else { panic!() };
    assert_eq!((a.file.to_str(), a.kernel.as_deref().and_then(|k| k.to_str())), (Some("-"), Some("k.elf")));
    for bad in [&["log", "--kernel", "k", "--test-kernel"][..], &["log", "--test-kernel", "--demo-kernel"], &[]] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}
