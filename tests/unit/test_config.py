"""Agent configuration: defaults, environment overrides, one-line errors naming the key."""

import os
import subprocess
import sys

import pytest

from bus.config import ConfigError, load_config

GOOD = """
[account]
jid = "alice@localhost"
password = "pw"
server = "127.0.0.1"
port = 5333
tls = "off"
[control]
commands = "ipc:///tmp/pj-config-test/commands"
events = "ipc:///tmp/pj-config-test/events"
[bus]
endpoint = "ipc:///tmp/pj-config-test/bus"
"""


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(GOOD)
    return path


def test_defaults_and_values(good):
    cfg = load_config(good, env={})
    assert cfg.account.jid == "alice@localhost" and cfg.account.port == 5333
    assert cfg.policy.reveal_ip_before_accept == "never"
    assert cfg.policy.auto_accept_calls == "none"
    assert cfg.audio.input == "default"
    assert cfg.bus.spawn == ("signalling", "media", "transfer")
    # Trust: nobody is approved by the agent itself; anyone may ring unless restricted.
    assert cfg.contacts.approve == "none"
    assert (cfg.policy.calls_from, cfg.policy.files_from) == ("anyone", "anyone")
    assert cfg.transfer.idle_timeout == 120.0 and cfg.transfer.hash == "sha-256"


def test_contacts_only_policies(good):
    cfg = load_config(good, env={"PYJINGLE_POLICY_CALLS_FROM": "contacts"})
    assert cfg.policy.accepts_from(cfg.policy.calls_from, True)
    assert not cfg.policy.accepts_from(cfg.policy.calls_from, False)
    assert cfg.policy.accepts_from(cfg.policy.files_from, False)


def test_env_overrides(good):
    cfg = load_config(good, env={"PYJINGLE_ACCOUNT_PORT": "5400",
                                 "PYJINGLE_POLICY_RELAY_ONLY": "true",
                                 "PYJINGLE_AUDIO_INPUT": "tone:440"})
    assert cfg.account.port == 5400 and cfg.policy.relay_only is True
    assert cfg.audio.input == "tone:440"


def test_default_endpoints_are_in_a_private_folder(tmp_path):
    cfg = load_config(None, env={"PYJINGLE_ACCOUNT_JID": "bob@localhost",
                                 "PYJINGLE_ACCOUNT_PASSWORD": "x",
                                 "PYJINGLE_ACCOUNT_TLS": "off",
                                 "XDG_RUNTIME_DIR": str(tmp_path)} | dict(os.environ) | {
                                     "XDG_RUNTIME_DIR": str(tmp_path)})
    assert cfg.control.commands.startswith("ipc://")
    folder = cfg.control.commands[len("ipc://"):].rsplit("/", 1)[0]
    assert folder.endswith("bob@localhost")


@pytest.mark.parametrize("override, key", [
    ({"PYJINGLE_ACCOUNT_PORT": "http"}, "account.port"),
    ({"PYJINGLE_ACCOUNT_TLS": "maybe"}, "account.tls"),
    ({"PYJINGLE_POLICY_AUTO_ACCEPT_CALLS": "everyone"}, "policy.auto_accept_calls"),
    ({"PYJINGLE_CONTROL_COMMANDS": "http://x"}, "control.commands"),
    ({"PYJINGLE_AUDIO_INPUT": "microphone"}, "audio.input"),
    ({"PYJINGLE_ACCOUNT_JID": "not a jid"}, "account.jid"),
    ({"PYJINGLE_ACCOUNT_SERVER": "xmpp.example.com"}, "account.tls"),
    ({"PYJINGLE_ICE_STUN_SERVER": "stun.example.com"}, "ice.stun_server"),
    ({"PYJINGLE_ICE_TURN_SERVER": "turn.example.com:3478"}, "ice.turn_username"),
    ({"PYJINGLE_ICE_TURN_TRANSPORT": "sctp"}, "ice.turn_transport"),
    ({"PYJINGLE_CONTACTS_APPROVE": "friends"}, "contacts.approve"),
    ({"PYJINGLE_POLICY_CALLS_FROM": "roster"}, "policy.calls_from"),
    ({"PYJINGLE_POLICY_FILES_FROM": "nobody"}, "policy.files_from"),
    ({"PYJINGLE_TRANSFER_IDLE_TIMEOUT": "-1"}, "transfer.idle_timeout"),
    ({"PYJINGLE_TRANSFER_HASH": "md5"}, "transfer.hash"),
    ({"PYJINGLE_MEDIA_WORKERS": "0"}, "media.workers"),
    ({"PYJINGLE_MEDIA_WORKERS": "many"}, "media.workers"),
])
def test_bad_values_name_the_key(good, override, key):
    with pytest.raises(ConfigError) as info:
        load_config(good, env=override)
    assert str(info.value).startswith(key)


def test_missing_required_key(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('[account]\njid = "a@localhost"\n')
    with pytest.raises(ConfigError, match=r"account\.password"):
        load_config(path, env={})


def test_supervisor_exits_2_with_one_line(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('[account]\njid = "a@localhost"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYJINGLE_")}
    proc = subprocess.run([sys.executable, "-m", "supervisor", "--config", str(path)],
                          capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "account.password" in lines[0]


@pytest.mark.parametrize("text, key", [
    ('[acount]\njid = "a@localhost"\n', "[acount]"),
    ('[account]\njid = "a@localhost"\npasword = "x"\n', "account.pasword"),
    ('[account\n', "config file"),
])
def test_unknown_sections_keys_and_bad_toml(tmp_path, text, key):
    path = tmp_path / "a.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value).startswith(key) and "\n" not in str(info.value)


def test_relay_only_per_contact(good):
    cfg = load_config(good, env={"PYJINGLE_POLICY_RELAY_ONLY_CONTACTS":
                                 "stranger@example.com, other@example.org/phone"})
    assert cfg.policy.relay_only_for("stranger@example.com/laptop")
    assert cfg.policy.relay_only_for("other@example.org")
    assert not cfg.policy.relay_only_for("friend@example.com/x")
    with pytest.raises(ConfigError, match="relay_only_contacts"):
        load_config(good, env={"PYJINGLE_POLICY_RELAY_ONLY_CONTACTS": "not a jid"})


@pytest.mark.parametrize("key", ["control.commands", "control.events", "bus.endpoint"])
def test_a_tcp_endpoint_without_curve_keys_is_refused(good, key):
    section, name = key.split(".")
    with pytest.raises(ConfigError) as info:
        load_config(good, env={f"PYJINGLE_{section.upper()}_{name.upper()}":
                               "tcp://127.0.0.1:7001"})
    assert str(info.value).startswith(key) and f"{section}.curve_keys" in str(info.value)


def test_a_tcp_endpoint_with_curve_keys(good, tmp_path):
    from bus.curve import make_keys

    keys = make_keys(tmp_path / "keys")
    assert oct(keys.stat().st_mode & 0o777) == "0o700"
    assert oct((keys / "server.key_secret").stat().st_mode & 0o777) == "0o600"
    cfg = load_config(good, env={"PYJINGLE_CONTROL_COMMANDS": "tcp://127.0.0.1:7001",
                                 "PYJINGLE_CONTROL_CURVE_KEYS": str(keys)})
    assert cfg.control.curve_keys == str(keys)
    (keys / "server.key").unlink()
    (keys / "server.key_secret").unlink()
    with pytest.raises(ConfigError) as info:
        load_config(good, env={"PYJINGLE_CONTROL_CURVE_KEYS": str(keys)})
    assert str(info.value).startswith("control.curve_keys") and "server.key" in str(info.value)


def test_disco_advertises_only_the_file_transports_switched_on(good):
    from signalling.jingle import namespaces as ns
    from signalling.service import features

    both = features(load_config(good, env={}))
    assert ns.S5B in both and ns.IBB in both
    ibb_only = features(load_config(good, env={"PYJINGLE_TRANSFER_TRANSPORTS": "ibb"}))
    assert ns.S5B not in ibb_only and ns.IBB in ibb_only and ns.JINGLE in ibb_only
    s5b_only = features(load_config(good, env={"PYJINGLE_TRANSFER_TRANSPORTS": "s5b"}))
    assert ns.IBB not in s5b_only and ns.S5B in s5b_only


def test_media_workers_is_a_count_or_auto(good):
    assert load_config(good, env={"PYJINGLE_MEDIA_WORKERS": "3"}).media.workers == 3
    assert load_config(good, env={"PYJINGLE_MEDIA_WORKERS": "auto"}).media.workers >= 1
    assert load_config(good, env={}).media.workers == 1
