//! The planner: which tests share a boot, which get their own, which are
//! skipped or left out, and what each boot's parameters and time limit are.

use std::time::Duration;

use crate::plan::{PlanOptions, boot_allowance, plan};
use crate::protocol::{Expect, TestInfo};
use crate::vm::{Emulator, VmConfig};
use bootimage::Firmware;

fn t(name: &str) -> TestInfo {
    TestInfo::new(name)
}

fn opts(smp: u32) -> PlanOptions {
    PlanOptions { smp, ..PlanOptions::default() }
}

fn names(tests: &[TestInfo]) -> Vec<&str> {
    tests.iter().map(|t| t.name.as_str()).collect()
}

fn list() -> Vec<TestInfo> {
    let mut fresh = t("smp::fresh");
    fresh.fresh = true;
    let mut panics = t("panic::expected");
    panics.expect = Expect::Panic;
    panics.message = "boom".into();
    let mut faults = t("fault::expected");
    faults.expect = Expect::Fault;
    let mut with_params = t("smp::serial");
    with_params.params = vec![("smp.parallel".into(), "0".into())];
    let mut big = t("smp::many");
    big.min_cpus = 8;
    let mut example = t("example::demo");
    example.example = true;
    vec![t("boot::a"), fresh, t("boot::b"), panics, with_params, big, example, faults, t("boot::c")]
}

#[test]
fn shareable_tests_share_one_boot_first_in_list_order() {
    let p = plan(&list(), &opts(4));
    assert_eq!(names(&p.boots[0].tests), ["boot::a", "boot::b", "boot::c"]);
    assert_eq!(p.boots[0].params.get("ktest.run"), Some("boot::a,boot::b,boot::c"));
}

#[test]
fn fresh_crashing_and_parameterised_tests_get_their_own_boot() {
    let p = plan(&list(), &opts(4));
    let singles: Vec<Vec<&str>> = p.boots[1..].iter().map(|b| names(&b.tests)).collect();
    assert_eq!(singles, [vec!["smp::fresh"], vec!["panic::expected"], vec!["smp::serial"], vec!["fault::expected"]]);
    for boot in &p.boots[1..] {
        assert_eq!(boot.params.get("ktest.run"), Some(boot.tests[0].name.as_str()));
    }
    assert_eq!(p.boots[3].params.get("smp.parallel"), Some("0"));
    assert_eq!(p.test_count(), 7);
}

#[test]
fn too_few_cpus_skips_without_booting() {
    let p = plan(&list(), &opts(4));
    assert_eq!(p.skipped.len(), 1);
    assert_eq!(p.skipped[0].0.name, "smp::many");
    assert_eq!(p.skipped[0].1, "needs 8 CPUs, running with 4");
    assert!(p.boots.iter().all(|b| b.tests.iter().all(|t| t.name != "smp::many")));

    let p = plan(&list(), &opts(8));
    assert!(p.skipped.is_empty());
    assert!(p.boots[0].tests.iter().any(|t| t.name == "smp::many"));
}

#[test]
fn examples_only_on_request() {
    let p = plan(&list(), &opts(4));
    assert_eq!(p.examples_dropped, 1);
    assert!(p.boots.iter().all(|b| b.tests.iter().all(|t| !t.example)));

    let p = plan(&list(), &PlanOptions { examples: true, ..opts(4) });
    assert_eq!(p.examples_dropped, 0);
    assert!(p.boots[0].tests.iter().any(|t| t.name == "example::demo"));
}

#[test]
fn filter_is_a_substring_of_the_name() {
    let p = plan(&list(), &PlanOptions { filter: Some("smp::".into()), ..opts(4) });
    let planned: Vec<&str> = p.boots.iter().flat_map(|b| names(&b.tests)).collect();
    assert_eq!(planned, ["smp::fresh", "smp::serial"]);
    assert_eq!(p.skipped.len(), 1, "smp::many matches the filter but needs 8 CPUs");
    assert_eq!(p.filtered_out, 5, "the example is dropped before the filter");
}

#[test]
fn user_params_go_to_every_boot_and_win_over_the_tests() {
    let user = vec![("smp.parallel".to_owned(), "1".to_owned()), ("log".to_owned(), "debug".to_owned())];
    let p = plan(&list(), &PlanOptions { user_params: user, ..opts(4) });
    for boot in &p.boots {
        assert_eq!(boot.params.get("log"), Some("debug"));
        assert_eq!(boot.params.get("smp.parallel"), Some("1"));
    }
}

#[test]
fn nobody_redirects_ktest_run() {
    let mut sneaky = t("sneaky");
    sneaky.params = vec![("ktest.run".into(), "other".into())];
    let p = plan(&[sneaky], &opts(1));
    assert_eq!(p.boots[0].params.get("ktest.run"), Some("sneaky"));
}

#[test]
fn timeout_is_allowance_plus_the_tests_budgets() {
    let mut a = t("a");
    a.timeout_ms = 1500;
    let mut b = t("b");
    b.timeout_ms = 2500;
    let p = plan(&[a, b], &opts(1));
    let bios = VmConfig::qemu(Firmware::Bios, 1);
    let uefi = VmConfig::qemu(Firmware::Uefi, 1);
    let bochs = VmConfig { emulator: Emulator::Bochs, ..VmConfig::qemu(Firmware::Bios, 1) };
    assert_eq!(p.boots[0].timeout(&bios), Duration::from_secs(15 + 4));
    assert_eq!(p.boots[0].timeout(&uefi), Duration::from_secs(40 + 4));
    assert_eq!(p.boots[0].timeout(&bochs), Duration::from_secs(90 + 4));
    let big = VmConfig { boot_allowance: Some(Duration::from_secs(120)), ..VmConfig::qemu(Firmware::Bios, 300) };
    assert_eq!(p.boots[0].timeout(&big), Duration::from_secs(120 + 4), "a machine's own allowance wins");
    assert!(boot_allowance(Emulator::Qemu, Firmware::Uefi) > boot_allowance(Emulator::Qemu, Firmware::Bios));
    assert!(boot_allowance(Emulator::Bochs, Firmware::Bios) > boot_allowance(Emulator::Qemu, Firmware::Uefi));
}

#[test]
fn nothing_to_run_means_no_boot() {
    let p = plan(&[], &opts(4));
    assert!(p.boots.is_empty());
    let mut only_big = t("x");
    only_big.min_cpus = 5;
    assert!(plan(&[only_big], &opts(4)).boots.is_empty());
}

#[test]
fn every_boot_learns_the_cpu_count_and_tests_or_users_may_override_it() {
    let mut own = t("own");
    own.params = vec![("smp.expect_cpus".into(), "1".into())];
    let p = plan(&[t("shared"), own.clone()], &opts(6));
    assert_eq!(p.boots[0].params.get("smp.expect_cpus"), Some("6"));
    assert_eq!(p.boots[1].params.get("smp.expect_cpus"), Some("1"), "the test's own wins");

    let user = PlanOptions { user_params: vec![("smp.expect_cpus".into(), "5".into())], ..opts(6) };
    let p = plan(&[t("shared"), own], &user);
    assert!(p.boots.iter().all(|b| b.params.get("smp.expect_cpus") == Some("5")), "the user's wins");
}
