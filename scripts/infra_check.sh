#!/usr/bin/env bash
# Offline Terraform checks: every *.tf parses (python-hcl2, project venv); where terraform is installed,
# `terraform fmt` is clean and, given a local provider mirror, `terraform validate` and `terraform test`
# pass; checkov (its own venv, from infra/requirements-checkov.lock) fails no check.
set -euo pipefail
cd "$(dirname "$0")/.."

TF_DIR=${INFRA_CHECK_DIR:-infra/terraform}
LOCK=infra/requirements-checkov.lock
CHECKOV_VENV=.tools/checkov

[ -x .venv/bin/python ] || scripts/bootstrap.sh

echo "==> parsing $TF_DIR (*.tf, *.tftest.hcl)"
.venv/bin/python scripts/hcl_parse.py "$TF_DIR"

if command -v terraform >/dev/null 2>&1; then
  echo "==> terraform fmt -check"
  if ! TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive "$TF_DIR" >/dev/null 2>&1; then
    TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff "$TF_DIR" 2>/dev/null || true
    echo "infra-check: terraform fmt would change the files above; run: terraform fmt -recursive $TF_DIR" >&2
    exit 1
  fi
fi

# `terraform validate` and `terraform test` (mocked provider) need the AWS provider's schema: they run
# where a local provider mirror (TF_PLUGIN_DIR) has a version matching the pin, since terraform cannot
# download providers here.
PLUGIN_DIR=${TF_PLUGIN_DIR-/opt/tf-plugins}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if command -v terraform >/dev/null 2>&1 && [ -n "$PLUGIN_DIR" ] && [ -d "$PLUGIN_DIR" ]; then
  cp -r "$TF_DIR" "$work/terraform"
  for env_dir in "$work"/terraform/environments/*/; do
    name=environments/$(basename "$env_dir")
    export TF_CLI_CONFIG_FILE=/dev/null TF_IN_AUTOMATION=1 TF_DATA_DIR="$work/data-$(basename "$env_dir")"
    if ! terraform -chdir="$env_dir" init -backend=false -input=false -no-color -plugin-dir="$PLUGIN_DIR" \
      >"$work/tf.log" 2>&1; then
      if grep -q "available versions for provider\|no available releases match" "$work/tf.log"; then
        echo "==> terraform validate / test: skipped ($PLUGIN_DIR has no provider matching the pin)"
        break
      fi
      cat "$work/tf.log" >&2
      echo "infra-check: FAILED: terraform init of $name" >&2
      exit 1
    fi
    echo "==> terraform validate $name (providers from $PLUGIN_DIR)"
    if ! terraform -chdir="$env_dir" validate -no-color >"$work/tf.log" 2>&1; then
      cat "$work/tf.log" >&2
      echo "infra-check: FAILED: terraform validate of $name" >&2
      exit 1
    fi
    if compgen -G "$env_dir/tests/*.tftest.hcl" >/dev/null || compgen -G "$env_dir/*.tftest.hcl" >/dev/null; then
      echo "==> terraform test $name (mocked AWS provider)"
      if ! terraform -chdir="$env_dir" test -no-color >"$work/tf.log" 2>&1; then
        grep -v '^  - ' "$work/tf.log" >&2
        echo "infra-check: FAILED: terraform test of $name" >&2
        exit 1
      fi
      echo "    ok: $(grep -E '^Success!' "$work/tf.log" | sed -E 's/^Success! ([0-9]+) passed.*/\1/') runs"
    fi
  done
  unset TF_DATA_DIR
else
  echo "==> terraform validate / test: skipped (needs terraform and a local provider mirror in TF_PLUGIN_DIR)"
fi

# checkov lives in its own venv: its bc-python-hcl2 shadows python-hcl2's `hcl2` module.
install_checkov() {
  local uv want stamp="$CHECKOV_VENV/.lock-stamp"
  want=$(.venv/bin/python -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$LOCK")
  if [ -x "$CHECKOV_VENV/bin/checkov" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  if command -v uv >/dev/null 2>&1; then uv=$(command -v uv); else uv=.tools/bin/uv; fi
  [ -x "$uv" ] || scripts/bootstrap.sh
  [ -x "$uv" ] || { echo "infra-check: uv not found (run make install)" >&2; exit 1; }
  echo "==> installing checkov into $CHECKOV_VENV from $LOCK"
  [ -x "$CHECKOV_VENV/bin/python" ] || "$uv" venv --quiet --python .venv/bin/python "$CHECKOV_VENV"
  "$uv" pip sync --quiet --python "$CHECKOV_VENV/bin/python" "$LOCK"
  echo "$want" > "$stamp"
}

mkdir -p .tools
if command -v flock >/dev/null 2>&1; then
  exec 9>.tools/.checkov.lock
  flock 9
fi
install_checkov
if command -v flock >/dev/null 2>&1; then flock -u 9; fi

echo "==> checkov"
out=$work/checkov.log
set +e
CKV_SKIP_PACKAGE_UPDATE_CHECK=true "$CHECKOV_VENV/bin/checkov" -d "$TF_DIR" --framework terraform \
  --skip-download --download-external-modules false --quiet --compact >"$out" 2>&1
rc=$?
set -e
summary=$(grep -E '^Passed checks: [0-9]+, Failed checks: [0-9]+, Skipped checks: [0-9]+' "$out" | tail -1 || true)
if [ -z "$summary" ] || [ "$rc" -ne 0 ]; then
  cat "$out"
fi
if [ -z "$summary" ]; then
  echo "infra-check: FAILED: checkov printed no summary (exit code $rc)" >&2
  exit 1
fi
passed=$(echo "$summary" | sed -E 's/^Passed checks: ([0-9]+).*/\1/')
failed=$(echo "$summary" | sed -E 's/.*Failed checks: ([0-9]+).*/\1/')
skipped=$(echo "$summary" | sed -E 's/.*Skipped checks: ([0-9]+).*/\1/')
if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
  echo "infra-check: FAILED: checkov $passed passed, $failed failed, $skipped skipped" >&2
  exit 1
fi
echo "infra-check: ok: checkov $passed passed, $failed failed, $skipped skipped"
