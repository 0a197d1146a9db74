"""bench.callgrind_costs: self costs from a callgrind dump, callees' inclusive costs left out."""

from pathlib import Path

from bench.callgrind_costs import self_costs

# Name compression as callgrind writes it: "(id) name" the first time, "(id)" after; the cost
# line after `calls=` is what the callee cost in all (inclusive), not the caller's own.
DUMP = """\
version: 1
positions: line
events: Ir
summary: 160
ob=(1) /lib/libpython3.11.so
fl=(1) ceval.c
fn=(1) _PyEval_EvalFrameDefault
0 100
cob=(2) /lib/cygrpc.so
cfl=(2) ???
cfn=(2) 0x1234
calls=3 0
0 40
ob=(2)
fl=(2)
fn=(2)
0 40
ob=(1)
fl=(1)
fn=(3) dict_lookup
+1 15
* 5
totals: 160
"""


def test_self_costs_per_object_and_function(tmp_path: Path) -> None:
    dump = tmp_path / "out.callgrind"
    dump.write_text(DUMP)
    by_object, by_function = self_costs(dump)
    assert by_object == {"/lib/libpython3.11.so": 120, "/lib/cygrpc.so": 40}
    assert by_function == {("/lib/libpython3.11.so", "_PyEval_EvalFrameDefault"): 100,
                           ("/lib/cygrpc.so", "0x1234"): 40,
                           ("/lib/libpython3.11.so", "dict_lookup"): 20}
