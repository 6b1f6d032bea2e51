//! The judge, over recorded serial transcripts and QEMU endings: no QEMU
//! needed.

use std::time::Duration;

use crate::judge::{BootReport, Exit, ListJudge, Outcome, judge};
use crate::protocol::{Expect, TestInfo};

fn t(name: &str) -> TestInfo {
    TestInfo::new(name)
}

fn expecting(name: &str, expect: Expect, message: &str) -> TestInfo {
    let mut test = t(name);
    test.expect = expect;
    test.message = message.into();
    test
}

/// Judges `transcript`, one line per 100 ms, ending at `end_s` seconds.
fn run(tests: &[TestInfo], transcript: &str, exit: Exit, end_s: f64) -> BootReport {
    let lines = transcript.lines().enumerate().map(|(i, l)| (Duration::from_millis(100 * i as u64), l));
    judge(tests, lines, exit, Duration::from_secs_f64(end_s))
}

fn outcome<'a>(report: &'a BootReport, name: &str) -> &'a Outcome {
    let mut found = report.verdicts.iter().filter(|v| v.name == name);
    let v = found.next().unwrap_or_else(|| panic!("no verdict for {name}: {report:#?}"));
    assert!(found.next().is_none(), "two verdicts for {name}");
    &v.outcome
}

fn failure<'a>(report: &'a BootReport, name: &str) -> &'a str {
    match outcome(report, name) {
        Outcome::Failed(why) => why,
        other => panic!("{name}: expected a failure, got {other:?}"),
    }
}

const LOG: &str = "[    0.012345 cpu0] INFO  kernel: hello";

#[test]
fn all_pass() {
    let tests = [t("a"), t("b")];
    let transcript = format!(
        "{LOG}\n@@KTEST BEGIN\ta\n@@KTEST PASS\ta\t410000\n@@KTEST BEGIN\tb\r\n{LOG}\n@@KTEST PASS\tb\t5\n@@KTEST DONE\t2\t0\t0"
    );
    let r = run(&tests, &transcript, Exit::Code(33), 2.0);
    assert_eq!(outcome(&r, "a"), &Outcome::Passed);
    assert_eq!(outcome(&r, "b"), &Outcome::Passed);
    assert_eq!(r.verdicts[0].duration, Some(Duration::from_millis(410)), "the guest's own time");
    assert!(r.boot_failures.is_empty(), "{:?}", r.boot_failures);
    assert!(r.rerun.is_empty());
    assert!(!r.has_failures());
}

#[test]
fn fail_and_skip_lines() {
    let tests = [t("a"), t("b"), t("c")];
    let transcript = "@@KTEST BEGIN\ta\n@@KTEST FAIL\ta\tassertion failed: x == y\n\
                      @@KTEST BEGIN\tb\n@@KTEST SKIP\tb\tonly 1 CPU online\n\
                      @@KTEST BEGIN\tc\n@@KTEST PASS\tc\t1\n@@KTEST DONE\t1\t1\t1";
    let r = run(&tests, transcript, Exit::Code(35), 1.0);
    assert_eq!(failure(&r, "a"), "assertion failed: x == y");
    assert_eq!(outcome(&r, "b"), &Outcome::Skipped("only 1 CPU online".into()));
    assert_eq!(outcome(&r, "c"), &Outcome::Passed);
    assert!(r.boot_failures.is_empty(), "exit 35 after a FAIL is normal: {:?}", r.boot_failures);
    assert!(r.rerun.is_empty());
}

#[test]
fn verdicts_stream_as_lines_arrive() {
    let mut judge = crate::judge::Judge::new(vec![t("a"), t("b")]);
    assert!(judge.feed(Duration::ZERO, "@@KTEST BEGIN\ta").is_empty());
    let v = judge.feed(Duration::from_millis(5), "@@KTEST PASS\ta\t3");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].name, "a");
    assert!(judge.feed(Duration::from_millis(6), LOG).is_empty());
    let r = judge.finish(Exit::TimedOut, Duration::from_secs(20));
    assert_eq!(r.verdicts[0].name, "a", "streamed verdicts come first in the report");
}

#[test]
fn panic_during_a_test_fails_it_and_the_rest_are_rerun() {
    let tests = [t("a"), t("b"), t("c"), t("d")];
    let transcript = "@@KTEST BEGIN\ta\n@@KTEST PASS\ta\t1\n@@KTEST BEGIN\tb\n\
                      @@KTEST PANIC\t2\tindex out of bounds at kernel/src/smp.rs:10:5\n\
                      @@KTEST PANIC\t0\tsecond report from another CPU";
    let r = run(&tests, transcript, Exit::Code(35), 3.0);
    assert_eq!(outcome(&r, "a"), &Outcome::Passed);
    let why = failure(&r, "b");
    assert!(why.contains("panicked on cpu 2"), "{why}");
    assert!(why.contains("index out of bounds at kernel/src/smp.rs:10:5"), "{why}");
    // Not re-running what passed or failed, not losing what did not run.
    let rerun: Vec<&str> = r.rerun.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(rerun, ["c", "d"]);
    assert!(r.verdicts.iter().all(|v| v.name != "c" && v.name != "d"));
    assert!(r.boot_failures.is_empty(), "{:?}", r.boot_failures);
}

#[test]
fn fault_during_a_test_fails_it() {
    let r = run(&[t("a")], "@@KTEST BEGIN\ta\n@@KTEST FAULT\t1\t#GP(0) at rip 0xffff800000001234", Exit::Code(35), 1.0);
    let why = failure(&r, "a");
    assert!(why.contains("fault") && why.contains("#GP(0)"), "{why}");
}

#[test]
fn hang_names_the_test_that_was_running() {
    let tests = [t("a"), t("b"), t("c")];
    // b begins at 0.2 s; the boot is killed at 20.2 s.
    let transcript = "@@KTEST BEGIN\ta\n@@KTEST PASS\ta\t1\n@@KTEST BEGIN\tb\nspinning...";
    let r = run(&tests, transcript, Exit::TimedOut, 20.2);
    let why = failure(&r, "b");
    assert!(why.starts_with("hung: no verdict after 20.0 s"), "{why}");
    assert_eq!(r.verdicts.iter().find(|v| v.name == "b").unwrap().duration, Some(Duration::from_secs(20)));
    assert_eq!(r.rerun.len(), 1);
    assert_eq!(r.rerun[0].name, "c");
}

#[test]
fn reset_fails_the_running_test() {
    let r = run(&[t("a"), t("b")], "@@KTEST BEGIN\ta", Exit::Code(0), 1.0);
    let why = failure(&r, "a");
    assert!(why.contains("guest reset (triple fault?)"), "{why}");
    assert!(why.contains("status 0"), "{why}");
    assert_eq!(r.rerun[0].name, "b");

    let r = run(&[t("a")], "@@KTEST BEGIN\ta", Exit::Signal(9), 1.0);
    assert!(failure(&r, "a").contains("signal 9"));
}

#[test]
fn status_other_than_33_or_35_is_never_a_pass() {
    // Every verdict line came, but the guest then reset instead of exiting.
    let r = run(&[t("a")], "@@KTEST BEGIN\ta\n@@KTEST PASS\ta\t1\n@@KTEST DONE\t1\t0\t0", Exit::Code(0), 1.0);
    assert!(r.has_failures());
    assert!(r.boot_failures[0].contains("guest reset"), "{:?}", r.boot_failures);
    assert!(r.boot_failures[0].contains("after `a`"), "{:?}", r.boot_failures);
}

#[test]
fn success_exit_without_a_verdict_fails_the_test_and_does_not_rerun() {
    let r =
        run(&[t("a"), t("b"), t("c")], "@@KTEST BEGIN\ta\n@@KTEST PASS\ta\t1\n@@KTEST BEGIN\tb", Exit::Code(33), 1.0);
    assert!(failure(&r, "b").starts_with("no verdict"));
    assert!(failure(&r, "c").starts_with("no verdict"));
    assert!(r.rerun.is_empty());
}

#[test]
fn crash_before_any_test_fails_all_rather_than_rerunning_forever() {
    let r = run(&[t("a"), t("b")], &format!("{LOG}\n@@KTEST PANIC\t0\tno ACPI tables"), Exit::Code(35), 1.0);
    assert!(r.rerun.is_empty());
    for name in ["a", "b"] {
        let why = failure(&r, name);
        assert!(why.contains("before it began") && why.contains("no ACPI tables"), "{why}");
    }
    assert!(r.boot_failures.iter().any(|f| f.contains("before the first test")), "{:?}", r.boot_failures);

    let r = run(&[t("a")], LOG, Exit::TimedOut, 15.0);
    assert!(failure(&r, "a").contains("guest hung"));
    assert!(r.rerun.is_empty());
}

#[test]
fn crash_between_tests_is_a_boot_failure_and_the_rest_rerun() {
    let r = run(
        &[t("a"), t("b")],
        "@@KTEST BEGIN\ta\n@@KTEST PASS\ta\t1\n@@KTEST PANIC\t1\tdouble free",
        Exit::Code(35),
        1.0,
    );
    assert_eq!(outcome(&r, "a"), &Outcome::Passed);
    assert_eq!(r.boot_failures.len(), 1);
    assert!(r.boot_failures[0].contains("double free") && r.boot_failures[0].contains("after `a`"));
    assert_eq!(r.rerun[0].name, "b");
}

#[test]
fn expected_panic_with_the_right_message_and_exit_passes() {
    let test = expecting("p", Expect::Panic, "boom");
    let transcript = "@@KTEST BEGIN\tp\n@@KTEST PANIC\t0\tboom at tests/guest/src/panic.rs:5:9";
    let r = run(std::slice::from_ref(&test), transcript, Exit::Code(35), 1.0);
    assert_eq!(outcome(&r, "p"), &Outcome::Passed);
    assert!(!r.has_failures(), "{r:#?}");
    assert_eq!(r.verdicts[0].duration, Some(Duration::from_millis(100)), "until the PANIC line");

    // An empty message accepts any panic.
    let any = expecting("p", Expect::Panic, "");
    assert_eq!(outcome(&run(&[any], transcript, Exit::Code(35), 1.0), "p"), &Outcome::Passed);
}

#[test]
fn expected_panic_with_the_wrong_message_fails() {
    let test = expecting("p", Expect::Panic, "kaboom");
    let r = run(&[test], "@@KTEST BEGIN\tp\n@@KTEST PANIC\t0\tboom", Exit::Code(35), 1.0);
    let why = failure(&r, "p");
    assert!(why.contains("does not contain") && why.contains("kaboom"), "{why}");
}

#[test]
fn expected_panic_needs_failure_exit() {
    let test = expecting("p", Expect::Panic, "boom");
    let transcript = "@@KTEST BEGIN\tp\n@@KTEST PANIC\t0\tboom";
    assert!(failure(&run(std::slice::from_ref(&test), transcript, Exit::Code(33), 1.0), "p").contains("success"));
    assert!(failure(&run(std::slice::from_ref(&test), transcript, Exit::Code(0), 1.0), "p").contains("reset"));
    assert!(failure(&run(std::slice::from_ref(&test), transcript, Exit::TimedOut, 9.0), "p").starts_with("hung"));
}

#[test]
fn expected_panic_that_never_comes_fails() {
    let test = expecting("p", Expect::Panic, "boom");
    let r = run(std::slice::from_ref(&test), "@@KTEST BEGIN\tp\n@@KTEST PASS\tp\t1", Exit::Code(33), 1.0);
    assert!(failure(&r, "p").contains("expected a panic, but the test returned"));
    let r = run(std::slice::from_ref(&test), "@@KTEST BEGIN\tp", Exit::Code(33), 1.0);
    assert!(failure(&r, "p").contains("expected a panic"));
    let r = run(std::slice::from_ref(&test), "@@KTEST BEGIN\tp", Exit::TimedOut, 16.0);
    let why = failure(&r, "p");
    assert!(why.starts_with("hung: expected a panic"), "{why}");
}

#[test]
fn expected_fault_gets_a_panic_instead() {
    let test = expecting("f", Expect::Fault, "page fault");
    let r = run(
        std::slice::from_ref(&test),
        "@@KTEST BEGIN\tf\n@@KTEST PANIC\t0\tpage fault handler missing",
        Exit::Code(35),
        1.0,
    );
    assert!(failure(&r, "f").contains("expected a fault"));
    let r = run(&[test], "@@KTEST BEGIN\tf\n@@KTEST FAULT\t0\tpage fault at 0x0", Exit::Code(35), 1.0);
    assert_eq!(outcome(&r, "f"), &Outcome::Passed);
}

#[test]
fn protocol_errors_and_strangers_are_boot_failures() {
    let r = run(
        &[t("a")],
        "@@KTEST BEGIN\ta\n@@KTEST PASS\ta\tsoon\n@@KTEST PASS\tzzz\t1\n@@KTEST PASS\ta\t1\n@@KTEST PASS\ta\t1",
        Exit::Code(33),
        1.0,
    );
    assert_eq!(outcome(&r, "a"), &Outcome::Passed);
    assert_eq!(r.boot_failures.len(), 3, "{:?}", r.boot_failures);
    assert!(r.boot_failures[0].contains("not a number"));
    assert!(r.boot_failures[1].contains("zzz"));
    assert!(r.boot_failures[2].contains("already has a verdict"));
}

#[test]
fn exit_status_must_agree_with_the_verdicts() {
    let r = run(&[t("a")], "@@KTEST BEGIN\ta\n@@KTEST FAIL\ta\tno", Exit::Code(33), 1.0);
    assert!(r.boot_failures.iter().any(|f| f.contains("exited with success")), "{:?}", r.boot_failures);
    let r = run(&[t("a")], "@@KTEST BEGIN\ta\n@@KTEST PASS\ta\t1\n@@KTEST DONE\t1\t0\t0", Exit::Code(35), 1.0);
    assert!(r.boot_failures.iter().any(|f| f.contains("exited with failure")), "{:?}", r.boot_failures);
    let r = run(&[t("a")], "@@KTEST BEGIN\ta\n@@KTEST PASS\ta\t1\n@@KTEST DONE\t2\t0\t0", Exit::Code(33), 1.0);
    assert!(r.boot_failures.iter().any(|f| f.contains("DONE says 2 passed")), "{:?}", r.boot_failures);
}

#[test]
fn begin_of_the_next_test_without_a_verdict_fails_the_previous() {
    let r = run(&[t("a"), t("b")], "@@KTEST BEGIN\ta\n@@KTEST BEGIN\tb\n@@KTEST PASS\tb\t1", Exit::Code(33), 1.0);
    assert!(failure(&r, "a").contains("no verdict"));
    assert_eq!(outcome(&r, "b"), &Outcome::Passed);
}

#[test]
fn rerun_boots_converge() {
    // Replaying the rule on a transcript where every boot crashes in its
    // first test: each boot judges one test, so the number of boots is
    // bounded by the number of tests.
    let mut tests: Vec<TestInfo> = ["a", "b", "c"].iter().map(|n| t(n)).collect();
    let mut boots = 0;
    while !tests.is_empty() {
        boots += 1;
        let first = tests[0].name.clone();
        let transcript = format!("@@KTEST BEGIN\t{first}\n@@KTEST PANIC\t0\tboom");
        let r = run(&tests, &transcript, Exit::Code(35), 1.0);
        assert!(failure(&r, &first).contains("boom"));
        tests = r.rerun;
    }
    assert_eq!(boots, 3);
}

#[test]
fn list_boot() {
    let mut a = t("a");
    a.min_cpus = 2;
    let b = expecting("b", Expect::Panic, "boom");
    let mut ok = ListJudge::default();
    ok.feed(LOG);
    ok.feed(&a.list_line());
    ok.feed(&b.list_line());
    ok.feed("@@KTEST LIST-END\t2");
    assert_eq!(ok.finish(Exit::Code(33)), Ok(vec![a.clone(), b.clone()]));

    let mut short = ListJudge::default();
    short.feed(&a.list_line());
    short.feed("@@KTEST LIST-END\t2");
    assert!(short.finish(Exit::Code(33)).unwrap_err().contains("LIST-END says 2"));

    let mut crashed = ListJudge::default();
    crashed.feed(&a.list_line());
    crashed.feed("@@KTEST PANIC\t0\tout of memory");
    let err = crashed.finish(Exit::Code(35)).unwrap_err();
    assert!(err.contains("out of memory") && err.contains("no LIST-END"), "{err}");

    let mut twice = ListJudge::default();
    twice.feed(&a.list_line());
    twice.feed(&a.list_line());
    twice.feed("@@KTEST LIST-END\t1");
    assert!(twice.finish(Exit::Code(33)).unwrap_err().contains("twice"));

    let mut hung = ListJudge::default();
    hung.feed(&a.list_line());
    assert!(hung.finish(Exit::TimedOut).unwrap_err().contains("hung"));
}
