//! Input piped to `cargo xtask qemu --keep-running` (`crate::process`): it
//! reaches the child only once the gate opens (the guest's console is
//! ready), and the child never sees it end while we hold the pipe.

use std::io::{Cursor, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{Gate, feed_input};

#[test]
fn fed_input_waits_for_the_gate_and_never_ends() {
    let mut cat = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("cat");
    let gate = Gate::new(false);
    let held = feed_input(Cursor::new(b"help\n".to_vec()), cat.stdin.take().unwrap(), gate.clone());
    let mut out = cat.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });

    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "input went through a shut gate");
    gate.open();
    let got = rx.recv_timeout(Duration::from_secs(5)).expect("input never arrived after the gate opened");
    assert_eq!(got, b"help\n");

    thread::sleep(Duration::from_millis(300));
    assert!(cat.try_wait().unwrap().is_none(), "the child saw the end of its input while the pipe was held");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while cat.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the child never saw the end of its input after the pipe was let go");
        thread::sleep(Duration::from_millis(20));
    }
}
