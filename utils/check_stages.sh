#!/usr/bin/env bash
# Usage: utils/check_stages.sh <stage> <stop-stage> <last-stage>
# Exits 1 with a message unless 0 <= stage <= stop-stage <= last-stage, all integers: a run.sh
# given --stage 7 of 5 stages would otherwise run nothing and exit 0.
if [ $# -ne 3 ]; then
  echo "usage: $0 <stage> <stop-stage> <last-stage>" >&2
  exit 2
fi
stage=$1 stop_stage=$2 last=$3
for v in "$stage" "$stop_stage"; do
  case $v in
    ''|*[!0-9]*) echo "${0##*/}: --stage/--stop-stage must be whole numbers 0..$last, got '$v'" >&2; exit 1 ;;
  esac
done
if [ "$stage" -gt "$last" ] || [ "$stop_stage" -gt "$last" ]; then
  echo "${0##*/}: this recipe's stages are 0..$last; got --stage $stage --stop-stage $stop_stage" >&2
  exit 1
fi
if [ "$stage" -gt "$stop_stage" ]; then
  echo "${0##*/}: --stage $stage is after --stop-stage $stop_stage: nothing would run" >&2
  exit 1
fi
