// The AXI4-Lite control slave (hw/rtl/tally_ctrl_regs.sv) driven as a host driver would: the register
// map of hw/README.md, byte strobes, the ap_ctrl_hs start/ready/done handshake and the interrupt.
#include <gtest/gtest.h>

#include <memory>

#include "Vtally_ctrl_regs.h"
#include "host/common/rng.h"
#include "verilated.h"

namespace tally {
namespace {

// Bounded wait for a handshake; a model that never answers fails the test instead of hanging it.
constexpr int kHandshakeCyclesMax = 64;

class CtrlBus {
 public:
  explicit CtrlBus(uint64_t seed) : context_(std::make_unique<VerilatedContext>()), rng_(seed) {
    // Registers power up random (from a fixed seed); every input is driven to idle before reset ends.
    context_->randReset(2);
    context_->randSeed(static_cast<int>(seed));
    m_ = std::make_unique<Vtally_ctrl_regs>(context_.get(), "ctrl");
    m_->s_axi_awvalid = 0;
    m_->s_axi_wvalid = 0;
    m_->s_axi_bready = 0;
    m_->s_axi_arvalid = 0;
    m_->s_axi_rready = 0;
    m_->ap_ready = 0;
    m_->ap_done = 0;
    m_->ap_idle = 0;
    m_->cycles = 0;
    m_->rst = 1;
    for (int i = 0; i < 3; ++i) tick();
    m_->rst = 0;
  }
  ~CtrlBus() {
    Verilated::threadContextp(context_.get());
    m_->final();
    m_.reset();
  }

  Vtally_ctrl_regs& m() { return *m_; }

  void tick() {
    m_->clk = 0;
    m_->eval();
    m_->clk = 1;
    m_->eval();
    // Kernel-side pulses last one cycle.
    m_->ap_done = 0;
  }

  void write(uint8_t addr, uint32_t data, uint8_t strb = 0xf) {
    m_->s_axi_awaddr = addr;
    m_->s_axi_wdata = data;
    m_->s_axi_wstrb = strb;
    m_->s_axi_awvalid = 1;
    m_->s_axi_wvalid = 1;
    m_->s_axi_bready = 0;
    bool taken = false;
    for (int c = 0; c < kHandshakeCyclesMax && !taken; ++c) {
      m_->clk = 0;
      m_->eval();
      taken = m_->s_axi_awready && m_->s_axi_wready;
      tick();
    }
    ASSERT_TRUE(taken) << "write to " << int{addr} << " never accepted";
    m_->s_axi_awvalid = 0;
    m_->s_axi_wvalid = 0;
    bool responded = false;
    for (int c = 0; c < kHandshakeCyclesMax && !responded; ++c) {
      m_->s_axi_bready = rng_.chance(1, 2);  // a slow host: the response must wait for it
      m_->clk = 0;
      m_->eval();
      responded = m_->s_axi_bvalid && m_->s_axi_bready;
      if (m_->s_axi_bvalid) EXPECT_EQ(m_->s_axi_bresp, 0);
      tick();
    }
    ASSERT_TRUE(responded);
    m_->s_axi_bready = 0;
  }

  uint32_t read(uint8_t addr) {
    m_->s_axi_araddr = addr;
    m_->s_axi_arvalid = 1;
    m_->s_axi_rready = 0;
    bool taken = false;
    for (int c = 0; c < kHandshakeCyclesMax && !taken; ++c) {
      m_->clk = 0;
      m_->eval();
      taken = m_->s_axi_arready;
      tick();
    }
    EXPECT_TRUE(taken);
    m_->s_axi_arvalid = 0;
    uint32_t data = 0xdeadbeef;
    bool got = false;
    for (int c = 0; c < kHandshakeCyclesMax && !got; ++c) {
      m_->s_axi_rready = rng_.chance(1, 2);
      m_->clk = 0;
      m_->eval();
      if (m_->s_axi_rvalid && m_->s_axi_rready) {
        got = true;
        data = m_->s_axi_rdata;
        EXPECT_EQ(m_->s_axi_rresp, 0);
      }
      tick();
    }
    EXPECT_TRUE(got) << "read of " << int{addr} << " never answered";
    m_->s_axi_rready = 0;
    return data;
  }

 private:
  std::unique_ptr<VerilatedContext> context_;
  std::unique_ptr<Vtally_ctrl_regs> m_;
  Rng rng_;
};

TEST(CtrlRegs, ArgumentsReadBackAndReachTheShell) {
  CtrlBus bus(1);
  bus.write(0x10, 0x89abcdef);
  bus.write(0x14, 0x01234567);
  bus.write(0x1c, 0x11111111);
  bus.write(0x20, 0x22222222);
  bus.write(0x28, 0x33333333);
  bus.write(0x2c, 0x44444444);
  bus.write(0x34, 1000);
  EXPECT_EQ(bus.m().arg_in0, 0x0123456789abcdefull);
  EXPECT_EQ(bus.m().arg_in1, 0x2222222211111111ull);
  EXPECT_EQ(bus.m().arg_out, 0x4444444433333333ull);
  EXPECT_EQ(bus.m().arg_count, 1000u);
  EXPECT_EQ(bus.read(0x10), 0x89abcdefu);
  EXPECT_EQ(bus.read(0x14), 0x01234567u);
  EXPECT_EQ(bus.read(0x2c), 0x44444444u);
  EXPECT_EQ(bus.read(0x34), 1000u);
  // Byte strobes: only byte 1 of COUNT changes.
  bus.write(0x34, 0xffffffff, 0b0010);
  EXPECT_EQ(bus.read(0x34), 1000u | 0xff00u);
  // Unmapped: reads zero, writes are dropped.
  bus.write(0x80, 0x5a5a5a5a);
  EXPECT_EQ(bus.read(0x80), 0u);
}

TEST(CtrlRegs, StartReadyDoneHandshake) {
  CtrlBus bus(2);
  bus.m().ap_idle = 1;
  bus.m().ap_ready = 0;
  EXPECT_EQ(bus.read(0x00), 0b0100u);  // idle, not started
  bus.write(0x00, 1);
  EXPECT_EQ(bus.m().ap_start, 1);
  EXPECT_EQ(bus.read(0x00) & 1u, 1u);
  // ap_start stays up until the kernel takes it.
  for (int i = 0; i < 5; ++i) bus.tick();
  EXPECT_EQ(bus.m().ap_start, 1);
  bus.m().ap_ready = 1;
  bus.m().ap_idle = 0;
  bus.tick();
  bus.m().ap_ready = 0;
  EXPECT_EQ(bus.m().ap_start, 0);
  // The run ends: done is seen once, then cleared by that read.
  bus.m().cycles = 0x0000000500000007ull;
  bus.m().ap_done = 1;
  bus.m().ap_idle = 1;
  bus.tick();
  EXPECT_EQ(bus.read(0x00), 0b0110u);
  EXPECT_EQ(bus.read(0x00), 0b0100u);
  EXPECT_EQ(bus.read(0x3c), 7u);
  EXPECT_EQ(bus.read(0x40), 5u);
}

TEST(CtrlRegs, DoneInterruptAndToggleOnWriteStatus) {
  CtrlBus bus(3);
  bus.write(0x08, 1);  // IER: done
  bus.m().ap_done = 1;
  bus.tick();
  EXPECT_EQ(bus.read(0x0c), 1u);
  EXPECT_EQ(bus.m().irq, 0) << "no interrupt before GIE";
  bus.write(0x04, 1);
  EXPECT_EQ(bus.m().irq, 1);
  bus.write(0x0c, 1);  // toggle clears
  EXPECT_EQ(bus.read(0x0c), 0u);
  EXPECT_EQ(bus.m().irq, 0);
  // With IER clear, done does not raise the status.
  bus.write(0x08, 0);
  bus.m().ap_done = 1;
  bus.tick();
  EXPECT_EQ(bus.read(0x0c), 0u);
}

}  // namespace
}  // namespace tally
