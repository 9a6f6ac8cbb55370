"""``citi serve``'s options: bad values are one error line and exit 2, before any model loads."""

import socket

import pytest

from citi.cli.main import main


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--max-batch", "0"], "--max-batch"),
        (["--port", "70000"], "--port"),
        (["--batch-window", "-1"], "--batch-window"),
        (["--prefix-cache-tokens", "-1"], "--prefix-cache-tokens"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, needle, capsys):
    assert main(["serve", "tiny-llama", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("citi: error:") and needle in err and err.count("\n") == 1


def test_a_taken_port_is_an_error_before_the_model_loads(capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "no-such-model", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
