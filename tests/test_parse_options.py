"""utils/parse_options.sh, driven through small bash scripts under set -euo pipefail."""

import subprocess
from pathlib import Path

import pytest

PARSE_OPTIONS = Path(__file__).resolve().parent.parent / 'utils' / 'parse_options.sh'

SCRIPT = f"""#!/usr/bin/env bash
set -euo pipefail
nj=4
foo_bar=
use_gpu=false
declare declared_only
help_message="Usage: $0 [options] <dir>"
. {PARSE_OPTIONS}
echo "nj=$nj"
echo "foo_bar=$foo_bar"
echo "use_gpu=$use_gpu"
echo "declared_only=${{declared_only-UNSET}}"
echo "nargs=$#"
for a in "$@"; do echo "arg=$a"; done
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / 'script.sh'
    path.write_text(SCRIPT)
    path.chmod(0o755)

    def run(*args, text=SCRIPT):
        path.write_text(text)
        return subprocess.run([str(path), *args], capture_output=True, text=True, cwd=tmp_path)

    return run


def values(result):
    assert result.returncode == 0, result.stderr
    out = {}
    args = []
    for line in result.stdout.splitlines():
        key, value = line.split('=', 1)
        if key == 'arg':
            args.append(value)
        else:
            out[key] = value
    out['args'] = args
    return out


def test_defaults_kept_without_options(script):
    v = values(script('a', 'b'))
    assert (v['nj'], v['foo_bar'], v['use_gpu'], v['declared_only']) == ('4', '', 'false', 'UNSET')
    assert v['args'] == ['a', 'b']


def test_dashes_map_to_underscores_and_empty_default_is_settable(script):
    v = values(script('--nj', '8', '--foo-bar', 'x y  z', 'data'))
    assert v['nj'] == '8'
    assert v['foo_bar'] == 'x y  z'
    assert v['args'] == ['data']


def test_underscore_spelling_sets_the_same_variable(script):
    # Kaldi's --foo-bar and ESPnet's habit --foo_bar both reach foo_bar: help texts show the dashes
    assert values(script('--foo_bar', 'u', 'x'))['foo_bar'] == 'u'
    assert values(script('--foo_bar=v', 'x'))['foo_bar'] == 'v'


def test_declared_without_value_is_an_option(script):
    assert values(script('--declared-only', 'v'))['declared_only'] == 'v'


def test_name_equals_value_form(script):
    v = values(script('--nj=3', '--foo-bar=a=b', '--use-gpu=true', 'x'))
    assert (v['nj'], v['foo_bar'], v['use_gpu']) == ('3', 'a=b', 'true')


def test_empty_value(script):
    assert values(script('--foo-bar=', 'x'))['foo_bar'] == ''
    assert values(script('--foo-bar', '', 'x'))['foo_bar'] == ''


def test_unknown_option_is_an_error_naming_it(script):
    r = script('--no-such', '1', 'x')
    assert r.returncode == 1
    assert 'unknown option --no-such' in r.stderr
    assert 'Usage:' in r.stderr  # help_message is printed
    assert 'nj=' not in r.stdout


def test_option_named_after_an_undeclared_variable_is_unknown_even_if_set_in_env(script, tmp_path):
    # only variables the script declared are options; HOME exists but home does not
    r = script('--home', '/x')
    assert r.returncode == 1 and 'unknown option --home' in r.stderr


def test_boolean_accepts_only_true_false(script):
    assert values(script('--use-gpu', 'true'))['use_gpu'] == 'true'
    r = script('--use-gpu', 'yes')
    assert r.returncode == 1
    assert '--use-gpu' in r.stderr and 'true or false' in r.stderr


def test_missing_value_is_an_error(script):
    r = script('--nj')
    assert r.returncode == 1
    assert 'option --nj needs a value' in r.stderr


def test_value_may_start_with_dashes(script):
    # Kaldi takes the next word as the value, whatever it looks like
    assert values(script('--foo-bar', '--x', 'a'))['foo_bar'] == '--x'


def test_help_prints_help_message_and_exits_0(script):
    for flag in ('--help', '-h'):
        r = script('--nj', '2', flag)
        assert r.returncode == 0
        assert r.stdout.startswith('Usage: ')
        assert 'nj=' not in r.stdout


def test_parsing_stops_at_first_non_option(script):
    v = values(script('--nj', '2', 'pos1', '--foo-bar', 'z'))
    assert v['nj'] == '2'
    assert v['foo_bar'] == ''
    assert v['args'] == ['pos1', '--foo-bar', 'z']


def test_double_dash_ends_options(script):
    v = values(script('--nj', '2', '--', '--foo-bar', 'z'))
    assert v['foo_bar'] == '' and v['args'] == ['--foo-bar', 'z']


def test_config_is_sourced_first_and_command_line_overrides(script, tmp_path):
    conf = tmp_path / 'x.conf'
    conf.write_text('nj=7\nfoo_bar="from conf"\n')
    # --config comes after --nj: the command line still wins for nj
    v = values(script('--nj', '9', '--config', str(conf), 'a'))
    assert v['nj'] == '9'
    assert v['foo_bar'] == 'from conf'
    assert v['args'] == ['a']
    v = values(script(f'--config={conf}', '--foo-bar', 'cli'))
    assert (v['nj'], v['foo_bar']) == ('7', 'cli')


def test_several_configs_in_order(script, tmp_path):
    (tmp_path / 'a.conf').write_text('nj=1\nfoo_bar=a\n')
    (tmp_path / 'b.conf').write_text('nj=2\n')
    v = values(script('--config', 'a.conf', '--config', 'b.conf'))
    assert (v['nj'], v['foo_bar']) == ('2', 'a')


def test_missing_config_file_is_an_error(script):
    r = script('--config', 'nope.conf', 'a')
    assert r.returncode == 1
    assert "nope.conf" in r.stderr and 'not found' in r.stderr


def test_positional_args_with_spaces_survive(script):
    v = values(script('--nj', '1', 'a b', "c'd", '$e'))
    assert v['args'] == ['a b', "c'd", '$e']


def test_no_internal_variables_leak(script):
    text = SCRIPT + 'set | grep -c "^__po_" || true\n'
    r = script('--nj', '2', text=text)
    assert r.returncode == 0
    assert r.stdout.splitlines()[-1] == '0'


def test_works_in_a_script_without_help_message(script):
    text = f"""#!/usr/bin/env bash
set -euo pipefail
stage=0
. {PARSE_OPTIONS}
echo "stage=$stage"
"""
    assert script('--stage', '3', text=text).stdout == 'stage=3\n'
    r = script('--bad', '1', text=text)
    assert r.returncode == 1 and 'unknown option --bad' in r.stderr
    assert script('--help', text=text).returncode == 0
