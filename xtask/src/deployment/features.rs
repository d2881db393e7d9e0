//! Checks of a service's cargo `features`.
//!
//! A service's crate is built with `--features <crate>/image` and, for
//! each name in its `features`, `<crate>/<name>`. A name is therefore
//! passed to cargo on its command line: it must be a plain feature name
//! (1 or more bytes of `a-z`, `0-9`, `-` and `_`). Services are built one
//! image per crate, so every service of one crate must ask for the same
//! features; otherwise one of them would silently run the other's build.

use super::schema::Service;
use super::validate::Errors;
use std::collections::BTreeMap;
use std::ops::Range;

type Services<'a> = [(&'a toml::Spanned<String>, &'a Service)];

/// Whether `s` can be a cargo feature name here.
pub fn valid_feature(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The features a service asks for, sorted and without duplicates.
pub fn of(s: &Service) -> Vec<String> {
    let mut v: Vec<String> = s.features.iter().map(|f| f.get_ref().clone()).collect();
    v.sort();
    v.dedup();
    v
}

pub(super) fn check(errs: &mut Errors, services: &Services) {
    let mut by_crate: BTreeMap<&str, (&str, Vec<String>, Range<usize>)> = BTreeMap::new();
    for (key, s) in services {
        let sname = key.get_ref().as_str();
        for f in &s.features {
            if !valid_feature(f.get_ref()) {
                errs.push(
                    f.span(),
                    format_args!(
                        "service {sname}: feature {:?}: use 1 or more bytes of a-z, 0-9, - and _",
                        f.get_ref()
                    ),
                );
            }
        }
        let krate = s.krate.get_ref().as_str();
        let mine = of(s);
        match by_crate.get(krate) {
            Some((other, theirs, at)) if *theirs != mine => errs.push(
                s.krate.span(),
                format_args!(
                    "service {sname}: crate {krate} with features [{}], but service {other} (line {}) builds it with [{}]; services of one crate share one image, so they must ask for the same features",
                    mine.join(", "),
                    errs.line(at.clone()),
                    theirs.join(", ")
                ),
            ),
            Some(_) => {}
            None => {
                by_crate.insert(krate, (sname, mine, s.krate.span()));
            }
        }
    }
}
