//! Host tests of `cargo xtask mutants`: reading cargo-mutants' output and
//! reporting it per crate and file.

use super::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn default_selection_is_every_core_on_its_default_files() {
    let s = select(TARGETS, &[], &[]).unwrap();
    let names: Vec<_> = s.iter().map(|s| s.target.package).collect();
    assert_eq!(
        names,
        [
            "faultline-kernel",
            "faultline-ipc",
            "xtask",
            "faultline-fault-pipeline"
        ]
    );
    assert_eq!(s[0].files, ["kernel/src/kern/**"]);
    let s = select(TARGETS, &strings(&["faultline-ipc"]), &[]).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].target.package, "faultline-ipc");
    assert!(s[0].files.contains(&"ipc/src/kconfig.rs".to_string()));
}

#[test]
fn files_go_to_the_crate_that_holds_them() {
    let files = strings(&[
        "kernel/src/kern/ipc.rs",
        "./ipc/src/wire.rs",
        "kernel/src/kern/caps.rs",
    ]);
    let s = select(TARGETS, &[], &files).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].target.package, "faultline-kernel");
    assert_eq!(
        s[0].files,
        ["kernel/src/kern/ipc.rs", "kernel/src/kern/caps.rs"]
    );
    assert_eq!(s[1].target.package, "faultline-ipc");
    assert_eq!(s[1].files, ["ipc/src/wire.rs"]);
    // A directory that merely starts like a crate's is not that crate.
    assert!(select(TARGETS, &[], &strings(&["ipcx/src/a.rs"])).is_err());
}

#[test]
fn unknown_packages_and_mismatched_files_are_refused() {
    let e = select(TARGETS, &strings(&["boot"]), &[]).unwrap_err();
    assert!(format!("{e}").contains("not a core"), "{e}");
    let e = select(
        TARGETS,
        &strings(&["xtask"]),
        &strings(&["kernel/src/kern/ipc.rs"]),
    )
    .unwrap_err();
    assert!(format!("{e}").contains("faultline-kernel"), "{e}");
    assert!(select(TARGETS, &[], &strings(&["services/vtd/src/lib.rs"])).is_err());
}

#[test]
fn arguments_name_package_files_and_exclusions() {
    let s = select(TARGETS, &[], &strings(&["kernel/src/kern/ipc.rs"])).unwrap();
    assert_eq!(
        mutants_args(&s[0]),
        [
            "--package",
            "faultline-kernel",
            "--file",
            "kernel/src/kern/ipc.rs",
            "--exclude",
            "kernel/src/kern/tests/**"
        ]
    );
}

#[test]
fn mutant_lines_parse_and_junk_does_not() {
    assert_eq!(
        Mutant::parse("kernel/src/kern/caps.rs:136:22: replace > with >= in CapTable::lookup"),
        Some(Mutant {
            file: "kernel/src/kern/caps.rs".into(),
            at: "136:22".into(),
            change: "replace > with >= in CapTable::lookup".into(),
        })
    );
    // The change may itself hold colons.
    assert_eq!(
        Mutant::parse("a.rs:1:2: replace f -> Result<(), E> with Ok(::core::default())")
            .unwrap()
            .change,
        "replace f -> Result<(), E> with Ok(::core::default())"
    );
    for junk in [
        "",
        "a.rs",
        "a.rs:1: x",
        "a.rs:x:2: y",
        "a.rs:1:2:",
        ":1:2: z",
    ] {
        assert_eq!(Mutant::parse(junk), None, "{junk:?}");
    }
}

#[test]
fn reports_count_per_crate_and_file_and_list_survivors() {
    let r = Report::from_lists([
        (
            Verdict::Caught,
            "a.rs:1:1: one\na.rs:2:1: two\nb.rs:1:1: three\n",
        ),
        (Verdict::Missed, "b.rs:9:5: survivor\n"),
        (Verdict::Unviable, "a.rs:3:1: no build\n"),
        (Verdict::Timeout, "b.rs:4:4: loops\n"),
    ]);
    assert_eq!(
        r.total,
        Counts {
            caught: 3,
            missed: 1,
            unviable: 1,
            timeout: 1
        }
    );
    assert_eq!(r.total.viable(), 5);
    assert_eq!(r.total.score(), 80.0);
    assert_eq!(
        r.files["a.rs"],
        Counts {
            caught: 2,
            missed: 0,
            unviable: 1,
            timeout: 0
        }
    );
    assert_eq!(r.files["b.rs"].missed, 1);
    assert_eq!(r.survivors.len(), 1);
    assert_eq!(r.survivors[0].at, "9:5");
    let text = r.render("crate", 2);
    assert!(text.starts_with("crate: caught   3  missed   1"), "{text}");
    assert!(text.contains("80.0% of 5 viable"), "{text}");
    assert!(text.contains("2 mutants judged equivalent"), "{text}");
    assert!(text.contains("  missed: b.rs:9:5: survivor\n"), "{text}");
    assert!(text.contains("  timeout: b.rs:4:4: loops\n"), "{text}");
}

#[test]
fn nothing_viable_scores_full_and_lists_survive_a_write_and_read() {
    assert_eq!(Counts::default().score(), 100.0);
    let dir = std::env::temp_dir().join(format!("xtask-mutants-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A missing list reads as empty.
    std::fs::write(dir.join("caught.txt"), "x.rs:1:1: a\n\n").unwrap();
    let read = Lists::read(&dir).unwrap();
    assert_eq!(read.caught, ["x.rs:1:1: a"]);
    assert!(read.missed.is_empty() && read.timeout.is_empty());
    let lists = Lists {
        caught: vec!["a.rs:1:1: x".into(), "a.rs:2:1: y".into()],
        missed: vec!["b.rs:1:1: z".into()],
        unviable: vec![],
        timeout: vec!["c.rs:3:3: w".into()],
    };
    lists.write(&dir).unwrap();
    let back = Lists::read(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(back, lists);
    let r = Report::of(&back);
    assert_eq!((r.total.caught, r.total.missed, r.total.timeout), (2, 1, 1));
}

#[test]
fn an_iteration_keeps_what_was_caught_and_takes_the_rest_from_the_rerun() {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let before = Lists {
        caught: strings(&["a:1:1: c1"]),
        missed: strings(&["a:2:1: m1", "a:3:1: m2", "a:4:1: m3"]),
        unviable: strings(&["a:5:1: u1"]),
        timeout: strings(&["a:6:1: t1"]),
    };
    let rerun = Lists {
        caught: strings(&["a:2:1: m1", "a:6:1: t1"]),
        missed: strings(&["a:3:1: m2"]),
        unviable: strings(&["a:5:1: u1"]),
        timeout: vec![],
    };
    let mut after = before.iterate(&rerun);
    assert_eq!(
        after.caught,
        strings(&["a:1:1: c1", "a:2:1: m1", "a:6:1: t1"])
    );
    assert_eq!(after.missed, strings(&["a:3:1: m2"]));
    assert_eq!(after.unviable, strings(&["a:5:1: u1"]));
    assert!(after.timeout.is_empty());
    // m3 was neither re-run nor is it listed any more (judged
    // equivalent): it is dropped, as is a stale name.
    let current: BTreeSet<String> = ["a:1:1: c1", "a:3:1: m2", "a:6:1: t1", "a:5:1: u1"]
        .into_iter()
        .map(String::from)
        .collect();
    after.retain(&current);
    assert_eq!(after.caught, strings(&["a:1:1: c1", "a:6:1: t1"]));
    assert_eq!(after.missed, strings(&["a:3:1: m2"]));
}
