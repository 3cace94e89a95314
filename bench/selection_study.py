"""In-process selection study: the selection algorithms without the storage service, a fresh
coreset every step, step-matched budgets, Fashion-MNIST / small CNN, one thread. It is the
oracle the service-backed benchmark (bench/tta.py) is read against: what each selection rule is
worth when the storage side always keeps up with the trainer.

    python bench/selection_study.py --arm ARM --seed S --mode val|test [--frac 0.1] [--lr 0.05]
        [--ws 0.1] [--pool 640] [--noweights] [--T 10 --npools 5] [--thr 0.05 --win 2] [--tag NAME] [--out FILE]
    python bench/selection_study.py --report FILE     # per-seed table, mean ± 95 % CI, paired diff vs random

Arms: random (a fresh per-class ceil(f n_c) subset per "epoch"), craig (whole-data facility
location per epoch), pa (every step: a fresh pool of ``--pool`` examples, pool/10 per class,
features for the pool only, host.select picks ceil(128/pool * n) per class), crest (every T
steps: --npools such coresets, trained round-robin: a fixed cadence, not CREST's loss check),
maxloss / lossprop / trim (loss-based pools), strat (control: 13 random per class per step, no
forward), full (E epochs on everything). ``--mode val`` trains on train[0:55000] and scores
train[55000:]; ``--mode test`` trains on all 60,000 and scores the test set. One JSON line per
run is appended to ``--out``. Linear LR warm-up over 5 % of the steps, then cosine to 0; the
first ``--ws`` of the steps come from the random arm's stream (warm start).
"""
import argparse
import collections
import gzip
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch.set_num_threads(1)

from bench._tta_stats import mean_ci  # noqa: E402
from host.models import build_model, to_input  # noqa: E402
from host.selection import class_budgets, select  # noqa: E402
from storage_service.ingest.locate import find_fashion_mnist  # noqa: E402



def _idx(p):
    with gzip.open(p, "rb") as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load():
    d, looked = find_fashion_mnist()
    if d is None:
        raise SystemExit(f"Fashion-MNIST not found (looked in {', '.join(looked)})")
    xtr = _idx(d / "train-images-idx3-ubyte.gz")
    ytr = _idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = _idx(d / "t10k-images-idx3-ubyte.gz")
    yte = _idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return to_input(xtr.copy(), (28, 28)), ytr, to_input(xte.copy(), (28, 28)), yte


def report(path):
    """Per budget: per-seed accuracy, mean ± 95 % t interval, paired difference vs random."""
    R, fwd = collections.defaultdict(dict), {}
    for line in open(path):
        r = json.loads(line)
        name = r["tag"] or r["arm"] + ("-noW" if r["noweights"] else "")
        key = ("full" if r["arm"] == "full" else r["frac"], name)
        R[key][r["seed"]] = 100 * r["acc"]
        fwd[key] = r["fwd_per_step"]
    for budget in sorted({k[0] for k in R}, key=str):
        print(f"\n### budget {budget}\n")
        arms = [k for k in R if k[0] == budget]
        seeds = sorted({s for k in arms for s in R[k]})
        print("| arm | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± 95% CI | paired diff vs random (n) | fwd/step |")
        print("|" + "---|" * (len(seeds) + 4))
        base = R.get((budget, "random"), {})
        for k in sorted(arms, key=lambda k: k[1] != "random"):
            v = R[k]
            m, h = mean_ci(list(v.values()))
            ds = [v[s] - base[s] for s in v if s in base]
            dtxt = "-" if k[1] == "random" or not ds else "%+.2f ± %.2f (%d)" % (mean_ci(ds)[0], mean_ci(ds)[1], len(ds))
            print(f"| {k[1]} | " + " | ".join(f"{v[s]:.2f}" if s in v else "" for s in seeds)
                  + f" | {m:.2f} ± {h:.2f} | {dtxt} | {fwd[k]:.0f} |")


if len(sys.argv) == 3 and sys.argv[1] == "--report":
    report(sys.argv[2])
    sys.exit(0)

p=argparse.ArgumentParser()
p.add_argument('--arm',required=True); p.add_argument('--seed',type=int,default=0)
p.add_argument('--mode',default='val'); p.add_argument('--frac',type=float,default=0.1)
p.add_argument('--E',type=int,default=5); p.add_argument('--lr',type=float,default=0.1)
p.add_argument('--warmup',type=float,default=0.05)   # LR linear warm-up, fraction of steps
p.add_argument('--ws',type=float,default=0.0)        # warm start: fraction of steps on random batches
p.add_argument('--pool',type=int,default=1280)       # candidate pool per mini-batch (pool arms)
p.add_argument('--T',type=int,default=10)            # crest: steps per selection
p.add_argument('--npools',type=int,default=5)        # crest: pools per selection
p.add_argument('--noweights',action='store_true')
p.add_argument('--thr',type=float,default=0.0)       # ss drop: loss threshold (0 = off)
p.add_argument('--win',type=int,default=2)           # ss drop: consecutive low-loss observations
p.add_argument('--out',default='bench/out/selection_study.jsonl'); p.add_argument('--tag',default='')
p.add_argument('--evals',type=int,default=0)          # also score K times during the run (a curve for time to accuracy)
a=p.parse_args()
B=128
X,y,Xt,yt=load()
if a.mode=='val': tr=np.arange(55000); Xe,ye=X[55000:],y[55000:]
else: tr=np.arange(60000); Xe,ye=Xt,yt
Y=torch.as_tensor(y)
full_steps=a.E*math.ceil(60000/B)            # 2345 for E=5 (same count in val and test mode)
S=full_steps if a.arm=="full" else int(math.floor(a.frac*full_steps+0.5))
rng=np.random.default_rng(a.seed*1000+7)
torch.manual_seed(a.seed); model=build_model('small_cnn',(28,28),10)
opt=torch.optim.SGD(model.parameters(),lr=a.lr,momentum=0.9,nesterov=True,weight_decay=5e-4)
wu=max(1,int(round(a.warmup*S)))
def lr_at(s): return a.lr*(s+1)/wu if s<wu else a.lr*0.5*(1+math.cos(math.pi*(s-wu)/max(1,S-wu)))
cls_idx={c:tr[y[tr]==c] for c in range(10)}
alive=np.ones(60000,bool); lowcnt=np.zeros(60000,np.int32)
fwd_count=0
def observe(idx,loss):
    if a.thr<=0: return
    low=loss<a.thr; lowcnt[idx[low]]+=1; lowcnt[idx[~low]]=0
    alive[idx[lowcnt[idx]>=a.win]]=False
def feats(idx):
    global fwd_count
    fwd_count+=len(idx); model.eval()
    with torch.inference_mode():
        pr=torch.softmax(model(X[idx]),1).numpy()
    model.train()
    g=pr.copy(); g[np.arange(len(idx)),y[idx]]-=1.0
    loss=-np.log(np.clip(pr[np.arange(len(idx)),y[idx]],1e-12,None))
    observe(idx,loss)
    return g.astype(np.float32),loss
def pool_idx(P):
    per=P//10; out=[]
    for c in range(10):
        ci=cls_idx[c]; ci=ci[alive[ci]]
        out.append(rng.choice(ci,min(per,len(ci)),replace=False))
    return np.concatenate(out)
def subset_random(f):
    return np.concatenate([rng.choice(ci,int(class_budgets(np.array([len(ci)]),f)[0]),replace=False) for ci in (cls_idx[c][alive[cls_idx[c]]] for c in range(10))])
def fl(idx,f):
    g,_=feats(idx); s=select(g,y[idx],f,seed=int(rng.integers(1<<30)))
    return idx[s.ids], s.weights.astype(np.float32)
# batch generators -------------------------------------------------------------
def gen_stream(make_epoch):
    buf_i=np.zeros(0,np.int64); buf_w=np.zeros(0,np.float32)
    while True:
        if len(buf_i)<B:
            i,w=make_epoch(); pm=rng.permutation(len(i)); buf_i=np.concatenate([buf_i,i[pm]]); buf_w=np.concatenate([buf_w,w[pm]])
        yield buf_i[:B],buf_w[:B]; buf_i,buf_w=buf_i[B:],buf_w[B:]
def ep_random():
    i=subset_random(a.frac); return i,np.ones(len(i),np.float32)
def ep_craig():
    return fl(tr[alive[tr]],a.frac)
def gen_pa():
    while True: yield fl(pool_idx(a.pool),B/a.pool)
def gen_crest():
    while True:
        bs=[fl(pool_idx(a.pool),B/a.pool) for _ in range(a.npools)]
        for t in range(a.T): yield bs[t%len(bs)]
def gen_maxloss():   # top-B loss per pool, per class (B/10 per class), unweighted
    while True:
        i=pool_idx(a.pool); _,l=feats(i); k=B//10+ (1 if B%10 else 0); out=[]
        for c in range(10):
            m=np.flatnonzero(y[i]==c); out.append(i[m[np.argsort(-l[m])[:k]]])
        o=np.concatenate(out); yield o,np.ones(len(o),np.float32)
def gen_lossprop():  # sample B from pool with prob ∝ loss (no replacement), importance weights unless --noweights
    while True:
        i=pool_idx(a.pool); _,l=feats(i); pr=l+1e-3; pr=pr/pr.sum()
        j=rng.choice(len(i),B,replace=False,p=pr); w=(1.0/(len(i)*pr[j])).astype(np.float32); w=w/w.mean()
        yield i[j],w
def gen_trim():  # drop the highest-loss half of a pool per class, sample B/10 per class from the rest, unweighted
    while True:
        i=pool_idx(a.pool); _,l=feats(i); k=B//10+(1 if B%10 else 0); out=[]
        for c in range(10):
            m=np.flatnonzero(y[i]==c); keep=m[np.argsort(l[m])[:max(k,len(m)//2)]]
            out.append(i[rng.choice(keep,min(k,len(keep)),replace=False)])
        o=np.concatenate(out); yield o,np.ones(len(o),np.float32)
def gen_strat():  # control: exactly ceil(B/10) random examples per class per step, unweighted, no forward
    while True:
        o=pool_idx(10*(B//10+(1 if B%10 else 0))); yield o,np.ones(len(o),np.float32)
def gen_full():
    def ep(): return tr.copy(),np.ones(len(tr),np.float32)
    return gen_stream(ep)
G={'random':lambda:gen_stream(ep_random),'craig':lambda:gen_stream(ep_craig),'pa':gen_pa,'crest':gen_crest,
   'maxloss':gen_maxloss,'lossprop':gen_lossprop,'trim':gen_trim,'strat':gen_strat,'full':gen_full}[a.arm]()
warm=gen_stream(ep_random) if a.ws>0 else None
nws=int(round(a.ws*S))
def score():
    model.eval()
    with torch.inference_mode():
        acc=float(np.mean(np.concatenate([model(Xe[b:b+2000]).argmax(1).numpy() for b in range(0,len(Xe),2000)])==ye))
    model.train(); return acc
marks={int(round(S*(k+1)/a.evals)) for k in range(a.evals)} if a.evals>0 else set()
curve=[]; eval_s=0.0
t0=time.perf_counter(); c0=time.process_time(); model.train()
for s in range(S):
    if s in marks:  # the curve's points: (steps done, trainer CPU s so far without evaluation, accuracy)
        e0=time.process_time(); curve.append((s,round(time.process_time()-c0-eval_s,2),score())); eval_s+=time.process_time()-e0
    for gr in opt.param_groups: gr['lr']=lr_at(s)
    idx,w=next(warm) if s<nws else next(G)
    if a.noweights: w=np.ones_like(w)
    out=model(X[idx]); l=F.cross_entropy(out,Y[idx],reduction='none')
    if a.thr>0 and a.arm=='random': observe(idx,l.detach().numpy())
    loss=(torch.as_tensor(w)*l).mean(); opt.zero_grad(); loss.backward(); opt.step()
train_s=time.perf_counter()-t0
train_cpu=time.process_time()-c0-eval_s
acc=score(); curve.append((S,round(train_cpu,2),acc))
r=dict(vars(a),steps=S,acc=acc,fwd_per_step=fwd_count/S,train_s=round(train_s,1),train_cpu_s=round(train_cpu,2),
       dropped=int((~alive[tr]).sum()),curve=curve if a.evals>0 else [])
print(json.dumps(r))
Path(a.out).parent.mkdir(parents=True, exist_ok=True)
open(a.out,'a').write(json.dumps(r)+'\n')
