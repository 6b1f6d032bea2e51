//! The guest-output line parser: every line kind, and malformed lines giving
//! errors rather than panics or silent acceptance.

use crate::protocol::{Event, Expect, TestInfo, clean_line, parse_line};

fn event(line: &str) -> Event {
    parse_line(line)
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .unwrap_or_else(|| panic!("{line:?} not a protocol line"))
}

#[test]
fn log_lines_are_not_protocol_lines() {
    for line in [
        "[    0.012345 cpu0] INFO  kernel: hello",
        "",
        "@@KTEST",
        "@@KTESTLIST\tx",
        " @@KTEST PASS\ta\t1", // not at column 0
        "log @@KTEST PASS\ta\t1",
    ] {
        assert_eq!(parse_line(line), Ok(None), "{line:?}");
    }
}

#[test]
fn list_line_with_all_fields() {
    let line = "@@KTEST LIST\tsmp::bringup\tfresh=1\tmin_cpus=4\ttimeout_ms=2500\texpect=panic\texample=0\tparams=smp.parallel=0;x=a b\tmessage=boom = bang";
    let Event::List(t) = event(line) else { panic!("not LIST") };
    assert_eq!(t.name, "smp::bringup");
    assert!(t.fresh);
    assert_eq!(t.min_cpus, 4);
    assert_eq!(t.timeout_ms, 2500);
    assert_eq!(t.expect, Expect::Panic);
    assert!(!t.example);
    assert_eq!(t.params, vec![("smp.parallel".to_owned(), "0".to_owned()), ("x".to_owned(), "a b".to_owned())]);
    assert_eq!(t.message, "boom = bang");
}

#[test]
fn list_fields_in_any_order_unknown_keys_ignored_empty_values() {
    let line =
        "@@KTEST LIST\ta\tmessage=\tparams=\texample=1\texpect=fault\ttimeout_ms=1\tmin_cpus=1\tfresh=0\tfuture=42";
    let Event::List(t) = event(line) else { panic!("not LIST") };
    assert_eq!(t.expect, Expect::Fault);
    assert!(t.example && !t.fresh);
    assert!(t.params.is_empty() && t.message.is_empty());
}

#[test]
fn list_line_round_trips_through_the_formatter() {
    let mut t = TestInfo::new("mod::name");
    t.fresh = true;
    t.min_cpus = 3;
    t.expect = Expect::Panic;
    t.params = vec![("k".into(), "v".into()), ("l".into(), "w".into())];
    t.message = "oops".into();
    assert_eq!(event(&t.list_line()), Event::List(t));
}

#[test]
fn every_other_line_kind() {
    assert_eq!(event("@@KTEST LIST-END\t12"), Event::ListEnd { count: 12 });
    assert_eq!(event("@@KTEST BEGIN\tboot::heap"), Event::Begin { name: "boot::heap".into() });
    assert_eq!(
        event("@@KTEST PASS\tboot::heap\t410000"),
        Event::Pass { name: "boot::heap".into(), elapsed_us: 410_000 }
    );
    assert_eq!(
        event("@@KTEST FAIL\tboot::heap\tleft: 1\tright: 2"),
        Event::Fail { name: "boot::heap".into(), message: "left: 1\tright: 2".into() }
    );
    assert_eq!(
        event("@@KTEST SKIP\tsmp::many\tonly 2 CPUs came online"),
        Event::Skip { name: "smp::many".into(), reason: "only 2 CPUs came online".into() }
    );
    assert_eq!(
        event("@@KTEST PANIC\t3\tboom at src/lib.rs:1:2"),
        Event::Panic { cpu: 3, message: "boom at src/lib.rs:1:2".into() }
    );
    assert_eq!(
        event("@@KTEST FAULT\t0\t#PF at 0xdead, error code 2"),
        Event::Fault { cpu: 0, message: "#PF at 0xdead, error code 2".into() }
    );
    assert_eq!(event("@@KTEST DONE\t5\t1\t2"), Event::Done { passed: 5, failed: 1, skipped: 2 });
}

#[test]
fn trailing_cr_and_leading_escape_sequences_are_ignored() {
    assert_eq!(event("@@KTEST BEGIN\ta\r"), Event::Begin { name: "a".into() });
    assert_eq!(event("\x1b[2J\x1b[01;01H@@KTEST BEGIN\ta\r\n"), Event::Begin { name: "a".into() });
    assert_eq!(clean_line("\x1b[=3h\x1bcx\r"), "x");
    assert_eq!(clean_line("\x1b["), "");
}

#[test]
fn malformed_lines_are_errors() {
    let bad = [
        "@@KTEST NOPE\ta",
        "@@KTEST PASS",
        "@@KTEST PASS\ta",
        "@@KTEST PASS\ta\tsoon",
        "@@KTEST PASS\ta\t1\textra",
        "@@KTEST PASS\t\t1",
        "@@KTEST BEGIN\ta,b",
        "@@KTEST BEGIN\ta b",
        "@@KTEST BEGIN",
        "@@KTEST FAIL\ta",
        "@@KTEST PANIC\tcpu0\tboom",
        "@@KTEST FAULT",
        "@@KTEST DONE\t1\t2",
        "@@KTEST DONE\t1\t2\t-3",
        "@@KTEST LIST-END",
        "@@KTEST LIST-END\tmany",
        "@@KTEST LIST",
        // A LIST line missing `message=`.
        "@@KTEST LIST\ta\tfresh=0\tmin_cpus=1\ttimeout_ms=1\texpect=ok\texample=0\tparams=",
        "@@KTEST LIST\ta\tfresh=2\tmin_cpus=1\ttimeout_ms=1\texpect=ok\texample=0\tparams=\tmessage=",
        "@@KTEST LIST\ta\tfresh=0\tmin_cpus=x\ttimeout_ms=1\texpect=ok\texample=0\tparams=\tmessage=",
        "@@KTEST LIST\ta\tfresh=0\tmin_cpus=1\ttimeout_ms=1\texpect=maybe\texample=0\tparams=\tmessage=",
        "@@KTEST LIST\ta\tfresh=0\tmin_cpus=1\ttimeout_ms=1\texpect=ok\texample=0\tparams=novalue\tmessage=",
        "@@KTEST LIST\ta\tfresh=0\tmin_cpus=1\ttimeout_ms=1\texpect=ok\texample=0\tparams=\tmessage=\tjunk",
    ];
    for line in bad {
        let err = parse_line(line).expect_err(line);
        assert!(!err.reason.is_empty());
        assert!(err.to_string().contains(&err.reason));
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap fuzz: every prefix of some tricky lines.
    let lines = [
        "@@KTEST LIST\tä\tfresh=1\tmin_cpus=99999999999999\tparams=a=b;;c=d\tmessage=\u{1F600}",
        "\x1b[\x1b[@@KTEST PANIC\t\t\t\t",
        "@@KTEST DONE\t4294967296\t0\t0",
    ];
    for line in lines {
        for end in (0..=line.len()).filter(|&i| line.is_char_boundary(i)) {
            let _ = parse_line(&line[..end]);
        }
    }
}
