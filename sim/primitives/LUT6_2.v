// lowbit's behavioural model of the Xilinx LUT6_2 cell (our own code, not a vendor library).
// O6 = INIT[{I5,I4,I3,I2,I1,I0}], O5 = INIT[{I4,I3,I2,I1,I0}] (the lower 32 bits).
// Added to simulator builds (and to non-Xilinx synthesis) only when a design instantiates
// LUT6_2; synth_xilinx never sees it and keeps the real cell.
module LUT6_2 #(
    parameter [63:0] INIT = 64'h0
) (
    output wire O6,
    output wire O5,
    input  wire I0,
    input  wire I1,
    input  wire I2,
    input  wire I3,
    input  wire I4,
    input  wire I5
);
    wire [31:0] lower = INIT[31:0];
    assign O6 = INIT[{I5, I4, I3, I2, I1, I0}];
    assign O5 = lower[{I4, I3, I2, I1, I0}];
endmodule
