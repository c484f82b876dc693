#!/usr/bin/env bash
# .venv: this clone's own virtualenv, with the project installed editable, on top of the
# dependencies of a virtualenv in the cache that is built once per pyproject.toml (through a
# .pth file). A fresh clone on the same machine so skips about 40 s of pip install, and no clone
# ever imports another clone's code.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
deps="${FASTAPI_OPERATOR_CACHE:-$HOME/.cache/fastapi-operator}/venv-deps-$(sha256sum pyproject.toml | cut -c1-16)"
purelib='import sysconfig; print(sysconfig.get_paths()["purelib"])'

if [ ! -f "$deps/.complete" ]; then
  rm -rf "$deps"
  python3 -m venv "$deps"
  "$deps/bin/pip" install --quiet --upgrade pip
  "$deps/bin/pip" install --quiet '.[test]'
  "$deps/bin/pip" uninstall --quiet --yes fastapi-operator
  touch "$deps/.complete"
fi

rm -rf "$venv"
python3 -m venv "$venv"
"$deps/bin/python" -c "$purelib" > "$("$venv/bin/python" -c "$purelib")/fastapi-operator-dependencies.pth"
"$venv/bin/pip" install --quiet --no-deps -e .
# The dependencies' commands too (fastapi, uvicorn: the data-path tests run them by path).
for command in "$deps"/bin/*; do
  [ -e "$venv/bin/$(basename "$command")" ] || ln -s "$command" "$venv/bin/"
done
touch "$venv/.installed"
