// lowbit's behavioural model of the Xilinx 7-series CARRY4 cell (our own code).
// Four carry-mux positions: CO[i] = S[i] ? carry_in(i) : DI[i], O[i] = S[i] ^ carry_in(i),
// carry_in(0) = CI | CYINIT, carry_in(i) = CO[i-1].
module CARRY4 (
    output wire [3:0] CO,
    output wire [3:0] O,
    input  wire       CI,
    input  wire       CYINIT,
    input  wire [3:0] DI,
    input  wire [3:0] S
);
    wire [3:0] c_in = {CO[2:0], CI | CYINIT};
    assign O = S ^ c_in;
    assign CO[0] = S[0] ? c_in[0] : DI[0];
    assign CO[1] = S[1] ? c_in[1] : DI[1];
    assign CO[2] = S[2] ? c_in[2] : DI[2];
    assign CO[3] = S[3] ? c_in[3] : DI[3];
endmodule
