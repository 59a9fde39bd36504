set -x
L=lowbit
D=../shared/data/mnist.npz
export LOWBIT_CACHE=$PWD/cache  # a cold cache
$L train --data $D --model tfc --method bnn --epochs 2 --seed 0 --out tfc-bnn
$L train --data $D --model tfc --method int8 --epochs 2 --seed 0 --out tfc-int8
$L sim tfc-bnn --images 1000
$L sim tfc-int8 --images 1000
time $L report tfc-bnn tfc-int8 --out R
echo "report exit: $?"
