"""Print nextpnr critical paths for a design: python critpath.py MODEL_DIR|digits:METHOD FAM DEV [fold] [extra make_hardware kw as k=v]"""
import json, subprocess, sys, tempfile, shutil, time
from pathlib import Path
sys.path.insert(0, '/work/wt/board')
from lowbit.steps import make_hardware
from hw.pipeline import DEFAULT_CLOCK_MHZ
from quantmodels.ir import load_model
from reports.pnr import shell_verilog, SHELL_TOP, DEVICES, PnrFamily
from reports.synth import synthesize
from sim.tools import nextpnr_cmd

src, fam, dev = sys.argv[1:4]
fold = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != '-' else None
kw = dict(a.split('=') for a in sys.argv[5:])
if src.startswith('digits:'):
    from quantmodels.datasets import load_digits
    from quantmodels.train import TrainConfig, train
    kind = {'binaryconnect':'accumulate','pow2':'shift_add','lut':'lut_product','dorefa':'bit_serial','int8':'mac'}[src[7:]]
    model = load_model(Path(f'/work/wt/board/.scratch/models/{kind}'))
else:
    model = load_model(Path(src))
clk = float(kw.pop('clock', DEFAULT_CLOCK_MHZ[fam]))
out = Path(tempfile.mkdtemp(prefix='cp-'))
h = make_hardware(model, fold, out, clock_mhz=clk, family=fam, **kw)
print('stages', h.design.pipeline_stages, 'cycles', h.cycles_per_image)
v = Path(h.verilog).read_text() + "\n" + shell_verilog(h.ports.dut, h.design.in_width, h.design.class_width, h.design.logit_width * h.design.n_classes)
(out / 'shell.v').write_text(v)
t0 = time.time()
syn = synthesize(out / 'shell.v', SHELL_TOP, fam)
print('synth', syn.luts, syn.ffs, syn.brams, syn.dsps, f'{time.time()-t0:.0f}s')
shutil.copyfile(str(syn.netlist_json), out / 'netlist.json')
cmd = nextpnr_cmd(fam) + DEVICES[PnrFamily(fam)][dev] + ["--json", "netlist.json", "--timing-allow-fail", "--report", "report.json", "--seed", "1", "--freq", "12", "-q", "--detailed-timing-report"]
t0 = time.time()
r = subprocess.run(cmd, cwd=out, capture_output=True, text=True)
print('pnr', r.returncode, f'{time.time()-t0:.0f}s', r.stderr[-500:] if r.returncode else '')
rep = json.loads((out / 'report.json').read_text())
print('fmax', rep['fmax'])
for cp in rep.get('critical_paths', [])[:1]:
    print('from', cp['from'], 'to', cp['to'])
    tot = 0
    for s in cp['path']:
        tot += s['delay']
        if s['type'] == 'logic' or s['type'] == 'clk-to-q' or s['type']=='setup':
            print(f"  {s['type']:8} {s['delay']:.2f} {tot:6.2f} {s['to'].get('cell','')}.{s['to'].get('port','')}")
        else:
            print(f"  {s['type']:8} {s['delay']:.2f} {tot:6.2f} net {s.get('net','')}")
print(out)
