"""Calibrated efficiency: what a serving answer assumes, the tutorial's flat factors one argument
away, and a fit of your own measurements.

    python examples/calibrated_profiles.py
"""
from mlsysim_opt import Hardware, Models, ServingModel
from mlsysim_opt.calibrate import CalibrationPoint, calibrate_profiles

model, hw = Models.Llama3_8B, Hardware.H100

# 1. By default a serving solve takes the profile fitted for its hardware and format.
calibrated = ServingModel().solve(model, hw, seq_len=2048, batch_size=32, precision="fp8")
flat = ServingModel().solve(model, hw, seq_len=2048, batch_size=32, precision="fp8", calibration="flat")
print(f"calibrated: ITL {calibrated.itl.to('ms'):.2f~P}, TTFT {calibrated.ttft.to('ms'):.1f~P}")
print(f"  from {calibrated.efficiency_basis}")
print(f"flat:       ITL {flat.itl.to('ms'):.2f~P}, TTFT {flat.ttft.to('ms'):.1f~P}")
print(f"  from {flat.efficiency_basis}")

# 2. Fit a profile to your own measurements: each point says how the model predicts it as a
#    function of (efficiency, bandwidth_efficiency). The "measurements" here are made up: the model
#    at efficiency 0.42 and bandwidth_efficiency 0.58, give or take 3 %. Replace them with yours.
def solve(batch, eta, bw):
    return ServingModel().solve(model, hw, seq_len=2048, batch_size=batch, precision="fp8", efficiency=eta,
                                bandwidth_efficiency=bw)


noise = {1: 1.03, 8: 0.98, 32: 1.01, 128: 0.97}
points = [CalibrationPoint(id=f"itl-b{b}", hardware="H100", precision="fp8", phase="serving",
                           published=solve(b, 0.42, 0.58).itl.m_as("ms") * noise[b], use="fit",
                           predict=lambda eta, bw, b=b: solve(b, eta, bw).itl.m_as("ms"))
          for b in noise]
points += [CalibrationPoint(id=f"ttft-b{b}", hardware="H100", precision="fp8", phase="serving",
                            published=solve(b, 0.42, 0.58).ttft.m_as("ms") * noise[b], use="fit",
                            predict=lambda eta, bw, b=b: solve(b, eta, bw).ttft.m_as("ms"))
           for b in (1, 8)]
[fit] = calibrate_profiles(points)
print(f"\nyour engine: efficiency {fit.factors['efficiency']:.2f}, bandwidth_efficiency "
      f"{fit.factors['bandwidth_efficiency']:.2f}; leave-one-out median error {fit.leave_one_out_median:.1%}")
for pid, err in fit.leave_one_out_errors.items():
    print(f"  {pid}: {err:+.1%} predicted by a fit without it")
