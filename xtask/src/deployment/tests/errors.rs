//! One bad manifest per validation rule, each checked for its exact
//! message and line. Manifests built with `with_sup` start their own text
//! at line 8 (lines 3-7 declare the supervisor `sup`).

use super::*;

/// `[services.<name>]` with the required keys (4 lines) and `extra` after.
pub(super) fn svc(name: &str, krate: &str, extra: &str) -> String {
    format!(
        "[services.{name}]\ncrate = \"faultline-{krate}\"\npriority = 1\nmemory-kib = 64\n{extra}"
    )
}

#[test]
fn unknown_keys_in_services_grants_channels_and_restart() {
    let msg = err(&with_sup(&svc("ping", "ping", "priorty = 3\n")));
    assert!(
        msg.starts_with("t.toml:12: unknown field `priorty`"),
        "{msg}"
    );
    let msg = err(&with_sup(&svc(
        "ping",
        "ping",
        "mmio = [{ name = \"a\", base = 0, size = 4096, cached = true }]\n",
    )));
    assert!(
        msg.starts_with("t.toml:12: unknown field `cached`"),
        "{msg}"
    );
    let msg = err(&with_sup(&svc(
        "ping",
        "ping",
        "restart = { backoff-ms = 1, max-restarts = 1, jitter = 2 }\n",
    )));
    assert!(
        msg.starts_with("t.toml:12: unknown field `jitter`"),
        "{msg}"
    );
    let msg = err(&with_sup(
        "[[channels]]\nname = \"c\"\nclient = \"sup\"\nserver = \"sup\"\nbadges = 3\n",
    ));
    assert!(
        msg.starts_with("t.toml:12: unknown field `badges`"),
        "{msg}"
    );
}

#[test]
fn restart_must_be_hold_or_a_backoff_table() {
    let msg = err(&with_sup(&svc("ping", "ping", "restart = \"sometimes\"\n")));
    assert!(msg.starts_with("t.toml:12: invalid value"), "{msg}");
    assert!(msg.contains("\"hold\" or { backoff-ms"), "{msg}");
    let msg = err(&with_sup(&svc(
        "ping",
        "ping",
        "restart = { backoff-ms = 0, max-restarts = 5000 }\n",
    )));
    assert_eq!(
        msg,
        "t.toml:12: service ping: backoff-ms = 0 is outside 1..=60000\n\
         t.toml:12: service ping: max-restarts = 5000 is outside 1..=1000"
    );
}

#[test]
fn channel_ends_must_be_services() {
    let text = with_sup(&format!(
        "{}[[channels]]\nname = \"pong\"\nclient = \"ping\"\nserver = \"pong\"\n",
        svc("ping", "ping", "")
    ));
    assert_eq!(
        err(&text),
        "t.toml:15: channel pong: server \"pong\" is not a service of this deployment"
    );
    let text = with_sup("[[channels]]\nname = \"c\"\nclient = \"nobody\"\nserver = \"sup\"\n");
    assert_eq!(
        err(&text),
        "t.toml:10: channel c: client \"nobody\" is not a service of this deployment"
    );
}

#[test]
fn a_channel_joins_two_services() {
    let text = with_sup("[[channels]]\nname = \"c\"\nclient = \"sup\"\nserver = \"sup\"\n");
    assert_eq!(
        err(&text),
        "t.toml:11: channel c: client and server are both sup; a channel joins two services"
    );
}

#[test]
fn channel_names_are_unique_and_valid() {
    let ch = |name: &str| {
        format!("[[channels]]\nname = \"{name}\"\nclient = \"ping\"\nserver = \"sup\"\n")
    };
    let text = with_sup(&format!(
        "{}{}{}",
        svc("ping", "ping", ""),
        ch("c"),
        ch("c")
    ));
    assert_eq!(
        err(&text),
        "t.toml:17: channel c: a channel of that name is already declared (line 13)"
    );
    let text = with_sup(&format!("{}{}", svc("ping", "ping", ""), ch("Big_Name")));
    assert_eq!(
        err(&text),
        "t.toml:13: channel name \"Big_Name\": use 1 to 24 bytes of a-z, 0-9 and -"
    );
}

#[test]
fn badges_tell_a_servers_clients_apart() {
    let text = with_sup(&format!(
        "{}{}[[channels]]\nname = \"a\"\nclient = \"ping\"\nserver = \"sup\"\nbadge = 2\n\
         [[channels]]\nname = \"b\"\nclient = \"pong\"\nserver = \"sup\"\n",
        svc("ping", "ping", ""),
        svc("pong", "pong", "")
    ));
    // Channel b's default badge is its index + 1 = 2.
    assert_eq!(
        err(&text),
        "t.toml:22: channel b: badge 2 is already used by channel a (line 20) to server sup"
    );
}

#[test]
fn priorities_go_up_to_15() {
    let text = format!("{HEAD}{}", SUP.replace("priority = 0", "priority = 16"));
    assert_eq!(
        err(&text),
        "t.toml:5: service sup: priority = 16 is outside 0..=15"
    );
}

#[test]
fn one_supervisor_exactly() {
    let text = with_sup(&svc("ping", "ping", "supervisor = true\n"));
    assert_eq!(
        err(&text),
        "t.toml:12: service ping: a second supervisor (service sup is one, line 7); at most one service may be"
    );
    let text = format!("{HEAD}{}", svc("ping", "ping", ""));
    assert_eq!(
        err(&text),
        "t.toml:3: the deployment has services but no supervisor: set `supervisor = true` on one"
    );
}

#[test]
fn memory_and_stack_budgets() {
    let mem = |v: &str| {
        err(&with_sup(&format!(
            "[services.ping]\ncrate = \"faultline-ping\"\npriority = 1\n{v}\n"
        )))
    };
    assert_eq!(
        mem("memory-kib = 8"),
        "t.toml:11: service ping: memory-kib = 8 is outside 16..=16384\n\
         t.toml:11: service ping: stack-kib = 16 must be less than memory-kib = 8"
    );
    assert_eq!(
        mem("memory-kib = 20000"),
        "t.toml:11: service ping: memory-kib = 20000 is outside 16..=16384"
    );
    assert_eq!(
        mem("memory-kib = 66"),
        "t.toml:11: service ping: memory-kib = 66 is not a multiple of 4 (whole pages)"
    );
    assert_eq!(
        mem("memory-kib = 64\nstack-kib = 2"),
        "t.toml:12: service ping: stack-kib = 2 is outside 4..=256"
    );
    assert_eq!(
        mem("memory-kib = 1024\nstack-kib = 512"),
        "t.toml:12: service ping: stack-kib = 512 is outside 4..=256"
    );
    assert_eq!(
        mem("memory-kib = 64\nstack-kib = 64"),
        "t.toml:12: service ping: stack-kib = 64 must be less than memory-kib = 64"
    );
    assert_eq!(
        mem("memory-kib = 64\ndma-kib = 0"),
        "t.toml:12: service ping: dma-kib = 0 is outside 4..=65536"
    );
}

#[test]
fn services_fit_in_half_the_machine() {
    let text = format!(
        "description = \"x\"\n[machine]\nmemory-mib = 64\n{}{}",
        SUP,
        svc("ping", "ping", "dma-kib = 40000\n").replace("memory-kib = 64", "memory-kib = 2048")
    );
    // 64 + 2048 + 40000 KiB.
    assert_eq!(
        err(&text),
        "t.toml:3: services need 42112 KiB (memory-kib plus dma-kib), more than half of machine.memory-mib = 64 (32768 KiB)"
    );
}

#[test]
fn a_crate_must_be_a_package_under_services() {
    let text = with_sup(&svc("ping", "pingg", ""));
    let dep = parse_str(&text).expect("a missing crate is not a parse error");
    let msg = format!("{:#}", dep.require_crates().unwrap_err());
    assert_eq!(
        msg,
        "t.toml:9: service ping: crate \"faultline-pingg\" is not a package under services/ \
         (packages: faultline-iommu, faultline-ping, faultline-pong, faultline-supervisor)"
    );
    assert!(parse_str(&with_sup("")).unwrap().require_crates().is_ok());
}

#[test]
fn capability_names_are_unique_per_service_and_valid() {
    let text = with_sup(&format!(
        "{}[[channels]]\nname = \"dma\"\nclient = \"ping\"\nserver = \"sup\"\n",
        svc("ping", "ping", "dma-kib = 64\n")
    ));
    assert_eq!(
        err(&text),
        "t.toml:14: service ping: capability name \"dma\" is already used by this service (line 12)"
    );
    let text = with_sup(&format!(
        "{}[[channels]]\nname = \"c\"\nclient = \"ping\"\nserver = \"sup\"\nclient-cap = \"a-very-long-capability-name\"\n",
        svc("ping", "ping", "")
    ));
    assert_eq!(
        err(&text),
        "t.toml:16: service ping: capability name \"a-very-long-capability-name\": use 1 to 24 bytes of a-z, 0-9 and -"
    );
}

#[test]
fn service_names_are_checked() {
    let text = with_sup(&svc("Ping_1", "ping", ""));
    assert_eq!(
        err(&text),
        "t.toml:8: service name \"Ping_1\": use 1 to 24 bytes of a-z, 0-9 and -"
    );
}

#[test]
fn limits_on_services_channels_and_caps() {
    let many: String = (0..16).map(|i| svc(&format!("s{i}"), "ping", "")).collect();
    let msg = err(&with_sup(&many));
    assert_eq!(
        msg,
        format!(
            "t.toml:{}: 17 services; a deployment has at most 16",
            8 + 15 * 4
        )
    );

    let mut text = with_sup(&svc("ping", "ping", ""));
    for i in 0..33 {
        text.push_str(&format!(
            "[[channels]]\nname = \"c{i}\"\nclient = \"ping\"\nserver = \"sup\"\n"
        ));
    }
    assert_eq!(
        err(&text),
        format!(
            "t.toml:{}: 33 channels; a deployment has at most 32",
            12 + 32 * 4 + 1
        )
    );

    // A PCI grant (line 12) and 24 IRQs (lines 14..=37): 25 capabilities.
    let irqs: String = (0..24)
        .map(|i| format!(" {{ name = \"i{i}\", bit = {i}, pci = \"e\" }},\n"))
        .collect();
    let text = with_sup(&svc(
        "ping",
        "ping",
        &format!("pci = [{{ name = \"e\", device = \"1234:11e8\" }}]\nirqs = [\n{irqs}]\n"),
    ));
    assert_eq!(
        err(&text),
        format!(
            "t.toml:{}: service ping: 25 capabilities; a service holds at most 24",
            13 + 24
        )
    );
}

#[test]
fn channels_without_services() {
    let text = format!("{HEAD}[[channels]]\nname = \"c\"\nclient = \"a\"\nserver = \"b\"\n");
    assert_eq!(
        err(&text),
        "t.toml:5: channel c: client \"a\" is not a service of this deployment\n\
         t.toml:6: channel c: server \"b\" is not a service of this deployment"
    );
}

#[test]
fn a_long_deployment_name_is_refused_when_it_has_services() {
    let e = parse(
        "a-deployment-name-that-is-too-long",
        Path::new("t.toml"),
        &with_sup(""),
        &packages(),
    )
    .unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        "t.toml:1: deployment name \"a-deployment-name-that-is-too-long\" is longer than 24 bytes"
    );
}

#[test]
fn all_errors_are_reported_in_line_order() {
    let text = with_sup(&format!(
        "{}[[channels]]\nname = \"c\"\nclient = \"ping\"\nserver = \"ghost\"\n",
        svc("ping", "ping", "priority = 99\n").replace("priority = 1\n", "")
    ));
    assert_eq!(
        err(&text),
        "t.toml:11: service ping: priority = 99 is outside 0..=15\n\
         t.toml:15: channel c: server \"ghost\" is not a service of this deployment"
    );
}

#[test]
fn required_service_keys() {
    let text = with_sup("[services.ping]\ncrate = \"faultline-ping\"\npriority = 1\n");
    assert_eq!(err(&text), "t.toml:8: missing field `memory-kib`");
}
