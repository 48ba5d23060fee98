"""YAML that a user wrote (a config, an operator file, a generator spec): read as `yaml.safe_load` reads it,
except that a key given twice in one mapping is an error (PyYAML keeps the last value in silence, so a
config with `iters: 10` above `iters: 2000` would run 2000 iterations while its author reads 10), and that
`1e-3` is a number, as in YAML 1.2 and every other reader (PyYAML's YAML 1.1 wants `1.0e-3` and reads a
string)."""
from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError

MERGE = "tag:yaml.org,2002:merge"  # `<<: *base`: keys written beside it override the merged ones, by design


class _Strict(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != MERGE:
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise ConstructorError(None, None, f"the key {key_node.value!r} is given twice",
                                           key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


_EXPONENT_ONLY = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$")  # 1e-3, 5E6, .5e1
_Strict.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_ONLY, list("-+0123456789."))


def load(text: str) -> Any:
    """The YAML document in `text`; a yaml.YAMLError (a ConstructorError) for a key given twice."""
    return yaml.load(text, Loader=_Strict)  # a SafeLoader subclass: no arbitrary objects
