# Kaldi-style option parsing. Source it, WITHOUT arguments, after declaring the defaults:
#
#   nj=4                 # every option is a variable declared before this line
#   use_gpu=false
#   help_message="Usage: $0 [options] <data-dir>"
#   . "$COCKTAIL_ROOT/utils/parse_options.sh"
#   # "$@" now holds the positional arguments
#
# Rules (Kaldi's utils/parse_options.sh, plus --name=value):
#   --foo-bar X, --foo-bar=X  set foo_bar, which must already be declared (even empty);
#                             an unknown option is an error.
#   a variable whose default is true or false only accepts true or false.
#   --config FILE             sourced before every other option, wherever it stands, so the
#                             command line overrides it; may be repeated.
#   --help, -h                print $help_message and exit 0.
#   --                        ends the options; so does the first argument not starting with --.
# Works under `set -euo pipefail`. Internal names start with __po_ and are removed at the end.

__po_fail() {
  echo "$0: $1" >&2
  if [ -n "${help_message:-}" ]; then
    printf '%s\n' "$help_message" >&2
  elif [ -n "${usage:-}" ]; then
    printf '%s\n' "$usage" >&2
  fi
  exit 1
}

# Pass 1: find every --config in the option part of the command line and source it.
__po_i=1
while [ "$__po_i" -le $# ]; do
  __po_arg=${!__po_i}
  case $__po_arg in
    --) break ;;
    --help | -h) __po_i=$((__po_i + 1)) ;;
    --config=*)
      __po_file=${__po_arg#--config=}
      [ -f "$__po_file" ] || __po_fail "config file '$__po_file' (from --config) not found"
      . "$__po_file"
      __po_i=$((__po_i + 1)) ;;
    --config)
      __po_i=$((__po_i + 1))
      [ "$__po_i" -le $# ] || __po_fail "option --config needs a value"
      __po_file=${!__po_i}
      [ -f "$__po_file" ] || __po_fail "config file '$__po_file' (from --config) not found"
      . "$__po_file"
      __po_i=$((__po_i + 1)) ;;
    --*=*) __po_i=$((__po_i + 1)) ;;
    --*) __po_i=$((__po_i + 2)) ;;
    *) break ;;
  esac
done

# Pass 2: the options themselves, shifted off the caller's "$@".
while [ $# -gt 0 ]; do
  case $1 in
    --) shift; break ;;
    --help | -h)
      if [ -n "${help_message:-}" ]; then
        printf '%s\n' "$help_message"
      elif [ -n "${usage:-}" ]; then
        printf '%s\n' "$usage"
      else
        echo "$0: no help message defined; read the top of the script"
      fi
      exit 0 ;;
    --*=*) __po_opt=${1%%=*}; __po_value=${1#*=}; shift ;;
    --*)
      [ $# -ge 2 ] || __po_fail "option $1 needs a value"
      __po_opt=$1; __po_value=$2; shift 2 ;;
    *) break ;;
  esac
  [ "$__po_opt" = --config ] && continue  # already sourced in pass 1
  __po_name=${__po_opt#--}
  __po_name=${__po_name//-/_}
  if ! [[ $__po_name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || ! declare -p "$__po_name" >/dev/null 2>&1; then
    __po_fail "unknown option $__po_opt"
  fi
  __po_old=${!__po_name-}
  if [ "$__po_old" = true ] || [ "$__po_old" = false ]; then
    [ "$__po_value" = true ] || [ "$__po_value" = false ] ||
      __po_fail "option $__po_opt takes true or false, not '$__po_value'"
  fi
  printf -v "$__po_name" '%s' "$__po_value"
done

unset __po_i __po_arg __po_file __po_opt __po_name __po_value __po_old
unset -f __po_fail
true  # the status of sourcing this file is success
