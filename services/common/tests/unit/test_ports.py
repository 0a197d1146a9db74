import socket

from switchboard_common import ports


def test_picks_differ_sit_below_the_ephemeral_range_and_bind():
    picked = [ports.free_port() for _ in range(50)]
    assert len(set(picked)) == 50
    floor = ports._ephemeral_floor()
    assert all(20000 <= port < floor for port in picked)  # no outgoing connection takes these
    with socket.socket() as s:
        s.bind(("127.0.0.1", picked[-1]))


def test_a_taken_port_is_skipped():
    taken, free = ports.free_port(), ports.free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        ports._walk = iter([taken - ports._LOWEST, free - ports._LOWEST])
        try:
            assert ports.free_port() == free
        finally:
            ports._walk = None
