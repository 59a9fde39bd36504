"""per-module area of the kinds_fmax digits designs: python area.py KIND FAM [fold] [--flat]"""
import sys, time, pickle
from pathlib import Path
sys.path.insert(0, '/work/wt/board')
sys.path.insert(0, '/work/wt/board/benchmarks')
from lowbit.steps import make_hardware
from hw.pipeline import DEFAULT_CLOCK_MHZ
from fpga_targets import KIND_METHODS, KIND_FOLDS, _digits_model
from quantmodels.ir import load_model, save_model
from reports.synth import module_area, synthesize

kind, fam = sys.argv[1:3]
fold = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != '-' else KIND_FOLDS[kind]
mdir = Path(f'/work/wt/board/.scratch/models/{kind}')
if (mdir / 'model.json').exists():
    model = load_model(mdir)
else:
    model = _digits_model(KIND_METHODS[kind]); save_model(model, mdir)
L = model.layers
print([(l.name, l.kind, l.rows, l.cols, l.input_bits, l.weight_bits) for l in L])
out = Path(f'/work/wt/board/.scratch/hw/{kind}-{fam}')
h = make_hardware(model, fold, out, clock_mhz=DEFAULT_CLOCK_MHZ[fam], family=fam)
print('stages', h.design.pipeline_stages, 'cycles', h.cycles_per_image)
t0 = time.time()
if '--flat' in sys.argv:
    s = synthesize(h.verilog, h.ports.dut, fam); print('flat', s.luts, s.ffs, s.brams, s.dsps)
ma = module_area(h.verilog, h.ports.dut, fam)
tot = {}
for k, v in sorted(ma.items()):
    print(f'{k:24} luts {v.luts:6} ffs {v.ffs:6} brams {v.brams:3} dsps {v.dsps:3}  {dict(sorted(v.cells.items()))}')
print(f'{time.time()-t0:.0f}s')
