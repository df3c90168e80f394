# One H200/H100 shot: TIGER on Amazon Beauty (paper config + tokenizer ablation) and BCE SASRec.
# Usage: bash .gpu_data/run1.sh BUDGET_MIN HARD_S [DATASET DATA_DIR]
export PYTHONPATH=src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
BUDGET=${1:-5.5}; HARD=${2:-500}; DS=${3:-amazon-beauty}; DD=${4-.gpu_data/amazon-beauty}
OUT=${OUT:-/tmp/out}; mkdir -p $OUT /tmp/r
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee /tmp/r/gpu.txt
D="--dataset $DS ${DD:+--data-dir $DD} --seeds 1 --k 5,10,20"
CB=${CB:-.gpu_data/codebooks}
run() { name=$1; shift; timeout -s INT $HARD ${PY:-python3} -m genrec benchmark $D "$@" --out /tmp/r/$name > /tmp/r/$name.log 2>&1; echo "$name rc=$?" >> /tmp/r/rc.txt; cp /tmp/r/$name/results.json /tmp/r/$name.json 2>/dev/null; }
T="tiger.time_budget_minutes=$BUDGET"
S="sasrec.time_budget_minutes=$BUDGET"
run tiger-rqvae --models tiger $XT --set $T --set tiger.eval_every=2 --set tiger.codebook_path=$CB/rqvae &
run tiger-rqvae-b1024 --models tiger $XT --set $T --set tiger.eval_every=2 --set tiger.codebook_path=$CB/rqvae --set tiger.batch_size=1024 --set tiger.lr=0.003 --set tiger.warmup_steps=300 &
run tiger-rqvae-paper --models tiger $XT --set $T --set tiger.eval_every=2 --set tiger.codebook_path=$CB/rqvae-paper &
run tiger-rkmeans --models tiger $XT --set $T --set tiger.eval_every=2 --set tiger.codebook_path=$CB/rkmeans &
run tiger-hkmeans --models tiger $XT --set $T --set tiger.eval_every=2 --set tiger.codebook_path=$CB/hkmeans &
run tiger-random --models tiger $XT --set $T --set tiger.eval_every=2 --set tiger.codebook=random &
run sasrec-bce-50 --models sasrec $XS --config sasrec=configs/amazon-beauty/variants/sasrec-bce.yaml --set $S --set sasrec.eval_every=2 &
run sasrec-bce-50-b98 --models sasrec $XS --config sasrec=configs/amazon-beauty/variants/sasrec-bce.yaml --set $S --set sasrec.eval_every=2 --set sasrec.adam_beta2=0.98 &
wait
${PY:-python3} - > /tmp/r/summary.txt 2>&1 <<'PY'
import glob, json
for f in sorted(glob.glob("/tmp/r/*.json")):
    r = json.load(open(f))
    for m, v in r["models"].items():
        mt = v["metrics"]; tr = (v.get("training") or [None])[0] or {}
        h = tr.get("history") or []
        vals = [round(x["ndcg@10"], 4) for x in h if "ndcg@10" in x]
        print(f.split("/")[-1][:-5], " ".join(f"{k}={mt[k]['mean']:.4f}" for k in ["recall@5","ndcg@5","recall@10","ndcg@10","recall@20","ndcg@20"]),
              f"epochs={tr.get('epochs_run')} best={tr.get('best_epoch')} oot={tr.get('out_of_time')} fit={v['fit_seconds']['mean']:.0f}s rec={v.get('recommend_seconds',{}).get('mean',0):.0f}s",
              "sps=%.0f" % (h[-1].get("sequences_per_second", 0) if h else 0), "val:", vals[-8:])
        d = v.get("diagnostics") or {}
        print("   diag:", {k: round(x["mean"], 4) for k, x in d.items() if any(s in k for s in ("beam", "exact", "invalid", "collision", "prefix"))})
PY
cat /tmp/r/summary.txt /tmp/r/rc.txt
for f in /tmp/r/*.log; do echo "== $f"; grep -iE "error|Traceback" -A3 $f | head -8; done
tar czf $OUT/results.tgz -C /tmp/r . 2>/dev/null; cp /tmp/r/summary.txt $OUT/
