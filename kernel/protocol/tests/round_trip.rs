//! Every line the kernels write, written with the line types and read back
//! with the parsers: the two sides of the protocol agree by construction.

use protocol::bench::{self, Unit};
use protocol::exit::{self, Verdict};
use protocol::ktest::{self, Event, Expect, Line, Listing, TestInfo};
use protocol::{FreeText, bt, clean_line};

fn ktest_round_trip(line: Line<'_>) -> Event {
    let text = line.to_string();
    ktest::parse_line(&text).unwrap_or_else(|e| panic!("{text:?}: {e}")).unwrap_or_else(|| panic!("{text:?} not ours"))
}

#[test]
fn every_ktest_line_parses_back() {
    assert_eq!(ktest_round_trip(Line::ListEnd { count: 7 }), Event::ListEnd { count: 7 });
    assert_eq!(ktest_round_trip(Line::Begin { name: "a::b" }), Event::Begin { name: "a::b".into() });
    assert_eq!(
        ktest_round_trip(Line::Pass { name: "a::b", elapsed_us: 12 }),
        Event::Pass { name: "a::b".into(), elapsed_us: 12 }
    );
    assert_eq!(
        ktest_round_trip(Line::Fail { name: "a::b", message: "x = 1" }),
        Event::Fail { name: "a::b".into(), message: "x = 1".into() }
    );
    assert_eq!(
        ktest_round_trip(Line::Skip { name: "a::b", reason: "needs 4 CPUs" }),
        Event::Skip { name: "a::b".into(), reason: "needs 4 CPUs".into() }
    );
    assert_eq!(
        ktest_round_trip(Line::Panic { cpu: 3, message: "boom" }),
        Event::Panic { cpu: 3, message: "boom".into() }
    );
    assert_eq!(
        ktest_round_trip(Line::Fault { cpu: 0, message: "#PF" }),
        Event::Fault { cpu: 0, message: "#PF".into() }
    );
    assert_eq!(
        ktest_round_trip(Line::Done { passed: 1, failed: 2, skipped: 3 }),
        Event::Done { passed: 1, failed: 2, skipped: 3 }
    );
}

#[test]
fn free_text_stays_on_one_line() {
    let text = Line::Fail { name: "t", message: "first\nsecond\r\tthird" }.to_string();
    assert!(!text.contains(['\n', '\r']), "{text:?}");
    assert_eq!(
        ktest::parse_line(&text).unwrap(),
        Some(Event::Fail { name: "t".into(), message: "first second  third".into() })
    );
    assert_eq!(FreeText(format_args!("a\n{}", 1)).to_string(), "a 1");
}

#[test]
fn a_listing_parses_back_into_the_same_test() {
    let listing = Listing {
        name: "stop::crash",
        fresh: true,
        min_cpus: 2,
        timeout_ms: 30_000,
        expect: Expect::Panic,
        example: false,
        params: "a=1;b=x=y",
        message: "deliberate = yes",
        backtrace: "f1,f2",
    };
    let Some(Event::List(info)) = ktest::parse_line(&listing.to_string()).unwrap() else { panic!("not a LIST line") };
    assert_eq!(info.name, "stop::crash");
    assert!(info.fresh && !info.example);
    assert_eq!((info.min_cpus, info.timeout_ms, info.expect), (2, 30_000, Expect::Panic));
    assert_eq!(info.params, [("a".to_owned(), "1".to_owned()), ("b".to_owned(), "x=y".to_owned())]);
    assert_eq!(info.message, "deliberate = yes");
    assert_eq!(info.backtrace, ["f1", "f2"]);
    // And the host's own writer says the same.
    assert_eq!(info.list_line(), listing.to_string());
    assert_eq!(ktest::parse_line(&info.list_line()).unwrap(), Some(Event::List(info)));
}

#[test]
fn a_default_test_info_round_trips() {
    let info = TestInfo::new("basics::heap");
    assert_eq!(ktest::parse_line(&info.list_line()).unwrap(), Some(Event::List(info)));
}

#[test]
fn backtrace_lines_parse_back() {
    let frame: bt::Line<&str> =
        bt::Line::Frame { cpu: 2, depth: 5, address: 0xffff_8000_0001_0abc, base: 0xffff_8000_0000_0000 };
    assert_eq!(
        bt::parse_line(&frame.to_string()).unwrap(),
        Some(bt::Line::Frame { cpu: 2, depth: 5, address: 0xffff_8000_0001_0abc, base: 0xffff_8000_0000_0000 })
    );
    let end = bt::Line::End { cpu: 1, why: format_args!("stopped after {} frames", 64) };
    assert_eq!(
        bt::parse_line(&end.to_string()).unwrap(),
        Some(bt::Line::End { cpu: 1, why: "stopped after 64 frames".into() })
    );
    // A backtrace line is not a @@KTEST line, and the other way round.
    assert_eq!(ktest::parse_line(&end.to_string()).unwrap(), None);
    assert_eq!(bt::parse_line(&Line::<&str>::Begin { name: "x" }.to_string()).unwrap(), None);
}

#[test]
fn bench_lines_parse_back() {
    let lines: [bench::Line<&str>; 5] = [
        bench::Line::Info { cpus: 4, tsc_mhz: 2600, idle: Some("halt") },
        bench::Line::Info { cpus: 2, tsc_mhz: 1, idle: None },
        bench::Line::GuestError("needs at least two CPUs"),
        bench::Line::Figure {
            name: bench::names::IPI_ROUNDTRIP,
            unit: Unit::Ns,
            median: 3000,
            p99: 9000,
            samples: 1000,
        },
        bench::Line::Done,
    ];
    for line in lines {
        let text = line.to_string();
        let back = bench::parse_line(&text).unwrap_or_else(|e| panic!("{e}")).expect("ours");
        assert_eq!(back.to_string(), text);
    }
    let rate = bench::Line::Figure { name: "x", unit: Unit::PerS, median: 5, p99: 5, samples: 1 }.to_string();
    assert!(matches!(bench::parse_line(&rate), Ok(Some(bench::Line::Figure { unit: Unit::PerS, median: 5, .. }))));
}

#[test]
fn exit_lines_and_statuses_agree() {
    for v in [Verdict::Success, Verdict::Failure] {
        assert_eq!(exit::parse_line(&exit::Line(v).to_string()), Some(v));
        // QEMU's isa-debug-exit: status = (value << 1) | 1.
        assert_eq!(v.qemu_status(), ((v.debug_exit_value() << 1) | 1) as i32);
    }
    assert_eq!((exit::QEMU_SUCCESS, exit::QEMU_FAILURE), (33, 35));
    assert_eq!(exit::parse_line("@@EXIT\tmaybe"), None);
    assert_eq!(exit::parse_line("\x1b[2J@@EXIT\tsuccess\r\n"), Some(Verdict::Success));
}

#[test]
fn clean_line_drops_escapes_before_the_prefix() {
    assert_eq!(clean_line("\x1b[0m\x1b[2J@@KTEST BEGIN\tx\r\n"), "@@KTEST BEGIN\tx");
}
