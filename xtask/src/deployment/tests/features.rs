//! Per-service cargo features: plain names only, the same for every
//! service of one crate, and handed to the image build per image.

use super::errors::svc;
use super::*;

#[test]
fn features_reach_the_image_build_sorted_once_each() {
    let text = with_sup(&svc(
        "ping",
        "ping",
        "features = [\"scalable\", \"a_b-2\", \"scalable\"]\n",
    ));
    let d = parse_str(&text).unwrap_or_else(|e| panic!("{e:#}"));
    let sys = d.system.unwrap();
    assert_eq!(sys.images, ["faultline-supervisor", "faultline-ping"]);
    assert_eq!(
        sys.features,
        [vec![], vec!["a_b-2".to_string(), "scalable".to_string()]]
    );
}

#[test]
fn feature_names_are_plain() {
    for bad in ["", "Scalable", "a/b", "x y", "image,evil"] {
        let text = with_sup(&svc("ping", "ping", &format!("features = [{bad:?}]\n")));
        assert_eq!(
            err(&text),
            format!(
                "t.toml:12: service ping: feature {bad:?}: use 1 or more bytes of a-z, 0-9, - and _"
            )
        );
    }
}

#[test]
fn services_of_one_crate_ask_for_the_same_features() {
    let text = with_sup(&format!(
        "{}{}",
        svc("a", "ping", "features = [\"x\"]\n"),
        svc("b", "ping", "")
    ));
    assert_eq!(
        err(&text),
        "t.toml:14: service b: crate faultline-ping with features [], but service a (line 9) builds it with [x]; services of one crate share one image, so they must ask for the same features"
    );
    let text = with_sup(&format!(
        "{}{}",
        svc("a", "ping", "features = [\"x\", \"y\"]\n"),
        svc("b", "ping", "features = [\"y\", \"x\"]\n")
    ));
    parse_str(&text).unwrap_or_else(|e| panic!("{e:#}"));
}
