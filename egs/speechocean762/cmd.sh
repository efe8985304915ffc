# Job runners of this recipe (Kaldi's cmd.sh). Every step takes --cmd "$train_cmd" and friends.
#   local machine:  utils/run.py   (at most --max-jobs-run jobs at once, default: the CPU count)
#   Slurm:          utils/slurm.py --config conf/slurm.conf
#   Grid Engine:    utils/gridengine.py --config conf/queue.conf   (Kaldi's queue.pl)
# Generic options every runner takes: --gpu N --mem X --num-threads N --max-jobs-run N --time T.

export train_cmd="utils/run.py"
export decode_cmd="utils/run.py"
export cuda_cmd="utils/run.py --gpu 1"

# On a Slurm cluster:
# export train_cmd="utils/slurm.py --config conf/slurm.conf --mem 4G"
# export decode_cmd="utils/slurm.py --config conf/slurm.conf --mem 4G"
# export cuda_cmd="utils/slurm.py --config conf/slurm.conf --gpu 1 --mem 16G"

# On a Grid Engine cluster:
# export train_cmd="utils/gridengine.py --config conf/queue.conf --mem 4G"
# export decode_cmd="utils/gridengine.py --config conf/queue.conf --mem 4G"
# export cuda_cmd="utils/gridengine.py --config conf/queue.conf --gpu 1 --mem 16G"
