//! The in-guest test harness.
//!
//! It lives with the tests, not in the kernel library: the shipped kernel
//! holds no test code. Suites list their tests with [`ktest!`]; `main.rs`
//! hands the lists to [`main`], which speaks the line protocol `cargo xtask
//! test` parses (its reference is the `protocol` crate, `kernel/protocol`):
//! `ktest.list=1` prints every test with its needs; `ktest.run=a,b` runs those
//! tests in order, each framed by `@@KTEST BEGIN` and a verdict line.

use alloc::string::String;

use kernel::{params, power, println_raw};
use protocol::ktest::{self as wire, Line};

/// What a test's run must end in for the host to call it passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The test returns `Ok`.
    Pass,
    /// The kernel panics with a message containing this text (the run then
    /// ends as a failure, which the host checks).
    Panic(&'static str),
    /// A fatal exception report containing this text.
    Fault(&'static str),
}

/// Why a test failed.
#[derive(Debug)]
pub struct Failure(pub String);

pub type Outcome = Result<(), Failure>;

/// One in-guest test.
#[derive(Clone, Copy, Debug)]
pub struct Test {
    /// `module::function` within the test crate.
    pub name: &'static str,
    pub run: fn() -> Outcome,
    /// Needs a boot of its own (it panics, stops CPUs, or wants a clean machine).
    pub fresh_boot: bool,
    pub min_cpus: usize,
    pub timeout_ms: u64,
    pub expect: Expect,
    /// Kept as an example of a failing or hanging test: not in the default run.
    pub example: bool,
    /// Boot parameters the test needs, `k=v;k=v`.
    pub params: &'static str,
    /// Functions the symbolized backtrace of the panicking CPU must name,
    /// innermost first, comma-separated (checked on the host).
    pub backtrace: &'static str,
    /// A boolean boot parameter the machine's configuration sets when the
    /// machine can show what the test checks; skipped where it is unset.
    pub needs: &'static str,
    /// Skipped on machines with more CPUs: the test's method stops scaling
    /// (say why where it is set).
    pub max_cpus: usize,
}

impl Test {
    pub const fn new(name: &'static str, run: fn() -> Outcome) -> Test {
        Test {
            name,
            run,
            fresh_boot: false,
            min_cpus: 1,
            timeout_ms: 20_000,
            expect: Expect::Pass,
            example: false,
            params: "",
            backtrace: "",
            needs: "",
            max_cpus: usize::MAX,
        }
    }
    pub const fn fresh_boot(mut self) -> Test {
        self.fresh_boot = true;
        self
    }
    pub const fn min_cpus(mut self, n: usize) -> Test {
        self.min_cpus = n;
        self
    }
    pub const fn max_cpus(mut self, n: usize) -> Test {
        self.max_cpus = n;
        self
    }
    pub const fn timeout_ms(mut self, ms: u64) -> Test {
        self.timeout_ms = ms;
        self
    }
    /// Expects a panic; implies a fresh boot.
    pub const fn expect_panic(mut self, message: &'static str) -> Test {
        self.expect = Expect::Panic(message);
        self.fresh_boot = true;
        self
    }
    /// Expects a fatal exception; implies a fresh boot.
    pub const fn expect_fault(mut self, message: &'static str) -> Test {
        self.expect = Expect::Fault(message);
        self.fresh_boot = true;
        self
    }
    /// The host checks that the panic's symbolized backtrace names these
    /// functions (comma-separated, innermost first) in order.
    pub const fn expect_backtrace(mut self, functions: &'static str) -> Test {
        self.backtrace = functions;
        self
    }
    pub const fn example(mut self) -> Test {
        self.example = true;
        self
    }
    /// Runs only where the configuration sets boot parameter `param`.
    pub const fn needs(mut self, param: &'static str) -> Test {
        self.needs = param;
        self
    }
    pub const fn params(mut self, p: &'static str) -> Test {
        self.params = p;
        self.fresh_boot = true;
        self
    }

    /// The name without the test crate's own prefix.
    pub fn short_name(&self) -> &'static str {
        match self.name.split_once("::") {
            Some((_, rest)) => rest,
            None => self.name,
        }
    }
}

/// Declares a test from a function: `ktest!(heap_works).min_cpus(2)`.
#[macro_export]
macro_rules! ktest {
    ($f:ident) => {
        $crate::ktest::Test::new(concat!(module_path!(), "::", stringify!($f)), $f)
    };
}

/// Fails the test with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! kassert {
    ($cond:expr) => {
        if !$cond {
            return Err($crate::ktest::Failure(alloc::format!("assertion failed: {} ({}:{})", stringify!($cond), file!(), line!())));
        }
    };
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::ktest::Failure(alloc::format!($($arg)+)));
        }
    };
}

/// Fails the test unless `a == b`, showing both.
#[macro_export]
macro_rules! kassert_eq {
    ($a:expr, $b:expr $(,)?) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err($crate::ktest::Failure(alloc::format!(
                "{} == {} failed: {:?} != {:?} ({}:{})",
                stringify!($a),
                stringify!($b),
                a,
                b,
                file!(),
                line!()
            )));
        }
    }};
}

/// Runs the harness: list or run, then end the run. Never returns.
pub fn main(suites: &[&[Test]]) -> ! {
    let tests = || suites.iter().flat_map(|s| s.iter());
    if params::get_bool("ktest.list", false) {
        let mut n = 0;
        for t in tests() {
            let (expect, message) = match t.expect {
                Expect::Pass => (wire::Expect::Ok, ""),
                Expect::Panic(m) => (wire::Expect::Panic, m),
                Expect::Fault(m) => (wire::Expect::Fault, m),
            };
            let listing = wire::Listing {
                name: t.short_name(),
                fresh: t.fresh_boot,
                min_cpus: t.min_cpus,
                timeout_ms: t.timeout_ms,
                expect,
                example: t.example,
                params: t.params,
                message,
                backtrace: t.backtrace,
            };
            println_raw!("{listing}");
            n += 1;
        }
        println_raw!("{}", Line::<&str>::ListEnd { count: n });
        power::exit(power::ExitCode::Success);
    }
    let Some(run) = params::get("ktest.run") else {
        log::error!("test kernel booted without ktest.list or ktest.run; nothing to do");
        power::exit(power::ExitCode::Failure);
    };
    let (mut passed, mut failed, mut skipped) = (0u32, 0u32, 0u32);
    for name in run.split(',').filter(|n| !n.is_empty()) {
        let Some(t) = tests().find(|t| t.short_name() == name) else {
            println_raw!("{}", Line::Fail { name, message: "no such test in this kernel" });
            failed += 1;
            continue;
        };
        let cpus = kernel::smp::PRESENT.len();
        if cpus < t.min_cpus {
            println_raw!(
                "{}",
                Line::Skip { name, reason: format_args!("needs {} CPUs, the machine has {cpus}", t.min_cpus) }
            );
            skipped += 1;
            continue;
        }
        if cpus > t.max_cpus {
            println_raw!(
                "{}",
                Line::Skip {
                    name,
                    reason: format_args!("its method holds at most {} CPUs, the machine has {cpus}", t.max_cpus)
                }
            );
            skipped += 1;
            continue;
        }
        if !t.needs.is_empty() && !params::get_bool(t.needs, false) {
            println_raw!(
                "{}",
                Line::Skip { name, reason: format_args!("this machine's configuration does not set {}", t.needs) }
            );
            skipped += 1;
            continue;
        }
        println_raw!("{}", Line::<&str>::Begin { name });
        let start = kernel::time::rdtsc();
        let outcome = (t.run)();
        kernel::hooks::reset();
        let elapsed_us = kernel::time::ticks_to_us(kernel::time::rdtsc() - start);
        match (outcome, t.expect) {
            (Ok(()), Expect::Pass) => {
                println_raw!("{}", Line::<&str>::Pass { name, elapsed_us });
                passed += 1;
            }
            (Ok(()), _) => {
                println_raw!("{}", Line::Fail { name, message: "expected a panic or fault, but the test returned" });
                failed += 1;
            }
            (Err(Failure(message)), _) => {
                println_raw!("{}", Line::Fail { name, message: message.as_str() });
                failed += 1;
            }
        }
    }
    println_raw!("{}", Line::<&str>::Done { passed, failed, skipped });
    power::exit(if failed == 0 { power::ExitCode::Success } else { power::ExitCode::Failure })
}
