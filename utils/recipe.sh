# Functions a recipe's run.sh sources (`. utils/recipe.sh`), so its log and --help read alike.
#
#   options_help <script>   the options of <script>: each variable assigned at the start of a line
#                           before its `. utils/parse_options.sh`, as `--name-with-dashes <value now>`
#                           and its comment (the one on its line, else the comment lines just above);
#                           call it after the assignments: --help comes from the variables themselves.
#   stage_start <n> <what>  prints "<date time> stage <n>: <what>" and starts the stage's clock;
#   stage_end               prints "<date time> stage <n> finished in H:MM:SS": the log holds the timings.
#   default_nj              this machine's cores (nproc): every recipe's default --nj.
#   default_ngpu            1 when a GPU is visible here and the .venv's torch can use it, else 0 (the
#                           CPU): every recipe's default --ngpu (utils/gpus.py says why not all of them).
# A run.sh sources path.sh and this file before its option variables, so that defaults can call these.

options_help() {
  local line name value option comment above= assignment='^([a-z][a-z0-9_]*)=' trailing='[[:space:]]#[[:space:]]*(.*)$'
  while IFS= read -r line; do
    [[ $line != .*parse_options.sh* ]] || break
    if [[ $line == "# "* ]]; then above+="${above:+ }${line#\# }"; continue; fi
    comment=$above above=
    [[ $line =~ $assignment ]] || continue
    name=${BASH_REMATCH[1]}
    [ "$name" != help_message ] || continue
    [[ ! $line =~ $trailing ]] || comment=${BASH_REMATCH[1]}
    value=${!name}
    [[ -n $value && $value != *" "* ]] || value="\"$value\""
    option="--${name//_/-} $value"
    [ ${#option} -le 24 ] || { echo "  $option"; option=; }  # a long default: the comment below it
    printf '  %-24s %s\n' "$option" "$comment"
  done < "$1"
}

stage_start() {
  __stage=$1 __stage_started=$SECONDS
  echo "$(date '+%F %T') stage $1: $2"
}

stage_end() {
  local s=$((SECONDS - __stage_started))
  printf '%s stage %s finished in %d:%02d:%02d\n' "$(date '+%F %T')" "$__stage" $((s / 3600)) $((s / 60 % 60)) $((s % 60))
}

default_nj() {
  nproc
}

default_ngpu() {
  utils/gpus.py default-ngpu
}
