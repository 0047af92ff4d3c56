//! Security warnings: allowed settings that weaken security or cannot work as
//! probably intended. Each comes with file:line:column and key path.

mod common;

use common::{MINIMAL, load, warnings, with};

#[test]
fn minimal_has_none() {
    assert!(warnings(MINIMAL).is_empty());
}

#[test]
fn wide_relay_networks() {
    let w = warnings(&with(
        "relay_networks = [\"10.0.0.0/8\", \"192.168.0.0/16\", \"2001:db8::/32\", \"2001:db8::/48\"]\n",
    ));
    assert_eq!(
        w,
        [
            "postern.toml:11:19: relay.relay_networks[0]: relay network 10.0.0.0/8 is wider than \
             /16: every host in it may relay mail to any domain; list smaller networks if you can",
            "postern.toml:11:51: relay.relay_networks[2]: relay network 2001:db8::/32 is wider \
             than /48: every host in it may relay mail to any domain; list smaller networks if \
             you can",
        ]
    );
}

#[test]
fn danger_keys_set_to_true() {
    let src = with(
        "relay_networks = [\"::/0\"]\n[danger]\nallow_insecure_auth = true\nallow_open_relay = true\n",
    );
    assert_eq!(
        warnings(&src),
        [
            "postern.toml:13:23: danger.allow_insecure_auth: insecure option enabled: AUTH may be \
             offered on listeners without TLS, so passwords can cross the network in clear",
            "postern.toml:14:20: danger.allow_open_relay: insecure option enabled: relay_networks \
             may contain 0.0.0.0/0 or ::/0, which lets anyone relay mail through this server \
             (open relay)",
            "postern.toml:11:19: relay.relay_networks[0]: relay network ::/0 is wider than /48: \
             every host in it may relay mail to any domain; list smaller networks if you can",
        ]
    );
    // Keys set to false are silent.
    assert!(
        warnings(&with(
            "[danger]\nallow_insecure_auth = false\nallow_open_relay = false\n"
        ))
        .is_empty()
    );
}

#[test]
fn short_command_timeout() {
    assert_eq!(
        warnings(&with("[limits]\ncommand_timeout = \"90s\"\n")),
        [
            "postern.toml:12:19: limits.command_timeout: 90s is shorter than the 5m RFC 5321 \
          §4.5.3.2.7 asks servers to wait for a command; slow but legitimate clients may be cut off"
        ]
    );
    let src = MINIMAL.replace(
        "kind = \"smtp\"\n",
        "kind = \"smtp\"\n[listener.limits]\ncommand_timeout = \"1m\"\n",
    );
    assert_eq!(
        warnings(&src),
        [
            "postern.toml:9:19: listener[0].limits.command_timeout: 1m is shorter than the 5m RFC \
          5321 §4.5.3.2.7 asks servers to wait for a command; slow but legitimate clients may be \
          cut off"
        ]
    );
    assert!(warnings(&with("[limits]\ncommand_timeout = \"5m\"\n")).is_empty());
}

#[test]
fn plaintext_listener_on_public_address() {
    let src = MINIMAL
        .replace("127.0.0.1:25", "0.0.0.0:25")
        .replace("kind = \"smtp\"\n", "kind = \"smtp\"\ntls = \"off\"\n");
    assert_eq!(
        warnings(&src),
        [
            "postern.toml:8:7: listener[0].tls: listener \"smtp\" on non-loopback address \
          0.0.0.0:25 has tls = \"off\": mail and envelopes cross the network in clear; set tls = \
          \"optional\""
        ]
    );
    // On loopback it is a local test setup: no warning.
    let local = MINIMAL.replace("kind = \"smtp\"\n", "kind = \"smtp\"\ntls = \"off\"\n");
    assert!(warnings(&local).is_empty());
    let v6 = local.replace("127.0.0.1:25", "[::1]:25");
    assert!(warnings(&v6).is_empty());
}

#[test]
fn submission_without_auth() {
    let src = with(
        "\n[[listener]]\nname = \"sub\"\naddress = \"127.0.0.1:587\"\nkind = \"submission\"\nauth = \"off\"\n",
    );
    assert_eq!(
        warnings(&src),
        [
            "postern.toml:16:8: listener[1].auth: submission listener \"sub\" has auth = \"off\": \
          clients cannot authenticate, so it accepts only what an smtp listener would (mail for \
          accepted_domains, relay from relay_networks)"
        ]
    );
}

#[test]
fn auth_listener_without_users() {
    let src = with(
        "\n[[listener]]\nname = \"sub\"\naddress = \"127.0.0.1:587\"\nkind = \"submission\"\n",
    );
    // auth defaults to "required": the listener header is pointed at.
    assert_eq!(
        warnings(&src),
        [
            "postern.toml:12:1: listener[1].auth: listener \"sub\" offers AUTH but no [[user]] is \
          defined, so every AUTH attempt fails; add users with a hash from `postern user hash`"
        ]
    );
}

#[test]
fn nothing_can_be_accepted() {
    let src = MINIMAL.replace("accepted_domains = [\"example.com\"]\n", "");
    assert_eq!(
        warnings(&src),
        [
            "postern.toml:9:1: relay: no accepted_domains and no relay_networks (and no users): the \
          server can accept no mail; list the domains you receive mail for"
        ]
    );
    let no_relay_table = MINIMAL.replace("[relay]\naccepted_domains = [\"example.com\"]\n", "");
    assert_eq!(
        warnings(&no_relay_table),
        [
            "postern.toml: relay: no accepted_domains and no relay_networks (and no users): the \
          server can accept no mail; list the domains you receive mail for"
        ]
    );
    // A relay network alone is enough (it may relay to other domains).
    let relay_only = MINIMAL.replace(
        "accepted_domains = [\"example.com\"]",
        "relay_networks = [\"192.0.2.0/24\"]",
    );
    assert!(warnings(&relay_only).is_empty());
}

#[test]
fn warnings_have_locations() {
    let loaded = load(&with("[limits]\ncommand_timeout = \"1m\"\n")).unwrap();
    let w = &loaded.warnings[0];
    assert_eq!(w.key(), "limits.command_timeout");
    assert_eq!(w.origin(), "postern.toml");
    let l = w.location().unwrap();
    assert_eq!((l.line, l.column), (12, 19));
}
