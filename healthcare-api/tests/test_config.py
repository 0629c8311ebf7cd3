import pytest

from healthcare_api import config

BASE = {"DB_HOST": "postgres", "DB_PASSWORD": "pw"}


def test_defaults_listen_on_all_interfaces_port_8080():
    s = config.load(dict(BASE))
    assert (s.listen_host, s.listen_port) == ("0.0.0.0", 8080)
    assert (s.db_port, s.db_name, s.db_user, s.pool_size) == (5432, "healthcare", "healthcare", 5)


def test_password_file_wins_and_is_trimmed(tmp_path):
    f = tmp_path / "pw"
    f.write_text("from-file\n")
    s = config.load({"DB_HOST": "h", "DB_PASSWORD_FILE": str(f)})
    assert s.db_password == "from-file"


def test_repr_never_shows_password():
    s = config.load(dict(BASE, DB_PASSWORD="hunter2-secret"))
    assert "hunter2-secret" not in repr(s)
    assert "hunter2-secret" not in str(s)


def test_every_bad_setting_is_named_with_its_fix(tmp_path):
    with pytest.raises(config.ConfigError) as e:
        config.load({"DB_POOL_SIZE": "lots", "DB_PORT": "70000",
                     "DB_PASSWORD_FILE": str(tmp_path / "missing")})
    msg = str(e.value)
    assert "DB_POOL_SIZE: must be an integer" in msg
    assert "DB_PORT: must be between 1 and 65535" in msg
    assert "DB_PASSWORD_FILE: cannot read" in msg
    assert "DB_HOST: not set" in msg


def test_pool_size_must_be_positive():
    with pytest.raises(config.ConfigError, match="DB_POOL_SIZE: must be between 1 and 100, got 0"):
        config.load(dict(BASE, DB_POOL_SIZE="0"))


def test_missing_password_is_an_error():
    with pytest.raises(config.ConfigError, match="DB_PASSWORD_FILE: not set"):
        config.load({"DB_HOST": "h"})


def test_bad_config_exits_2_with_message(start_server):
    s = start_server(DB_POOL_SIZE="-1")
    assert s.proc.wait(timeout=20) == 2
    assert "DB_POOL_SIZE: must be between 1 and 100, got -1" in s.output()
    assert "s3cret" not in s.output()
