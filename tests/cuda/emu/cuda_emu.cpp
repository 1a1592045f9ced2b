// The CPU emulator of tests/cuda/emu/cuda_emu.h: a fiber per thread of a block, a
// scheduler that runs every runnable fiber to its next synchronization point and then releases
// what CUDA would release, and the few CUDA runtime calls our launchers make (this executable
// does not link the CUDA runtime: these definitions are the runtime it sees).
#include "cuda_emu.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define SB_EMU_ASAN 1
#endif

#if !defined(__x86_64__) || defined(SB_EMU_UCONTEXT)
#include <ucontext.h>
#endif

namespace sb::emu {
namespace {

// Switching between the scheduler and the fibers. On x86-64 a dozen instructions (the callee-saved
// registers, the stack pointer, MXCSR and the x87 control word): no system call, and none of
// AddressSanitizer's swapcontext interception, which clears the whole target stack's shadow at
// every switch. Elsewhere ucontext, which also saves the signal mask (a system call per switch).
#if defined(__x86_64__) && !defined(SB_EMU_UCONTEXT)
extern "C" void sb_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .pushsection .text
  .globl sb_emu_switch
  .type sb_emu_switch, @function
sb_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size sb_emu_switch, .-sb_emu_switch
  .popsection
)");

struct Context {
  void* sp = nullptr;
};

// A context that starts `entry` (which never returns) on the stack [stack, stack + bytes): the
// frame sb_emu_switch pops, with entry as its return address and a dummy one under it, so that
// entry starts with the stack aligned as after a call.
void context_init(Context& c, void* stack, std::size_t bytes, void (*entry)()) {
  auto* top = reinterpret_cast<std::uint64_t*>((reinterpret_cast<std::uintptr_t>(stack) + bytes) & ~std::uintptr_t{15});
  std::uint64_t* sp = top - 9;
  sp[0] = 0x1F80 | (std::uint64_t{0x037F} << 32);  // MXCSR and the x87 control word at their defaults
  for (int i = 1; i <= 6; ++i) sp[i] = 0;          // r15, r14, r13, r12, rbx, rbp
  sp[7] = reinterpret_cast<std::uint64_t>(entry);  // returned to
  sp[8] = 0;                                       // entry's own (never used) return address
  c.sp = sp;
}
void context_switch(Context& from, Context& to) { sb_emu_switch(&from.sp, to.sp); }
#else
struct Context {
  ucontext_t uc{};
};
void context_init(Context& c, void* stack, std::size_t bytes, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
void context_switch(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

enum class Wait { running, block_barrier, warp_sync, warp_shfl, warp_gather, done, aborted };

struct Fiber {
  Context ctx;
  ThreadState st;
  Wait wait = Wait::running;
  std::uint64_t shfl_in = 0, shfl_out = 0;
  int shfl_src = 0;
  const void* gather_in = nullptr;  // warp_allgather
  void* gather_out = nullptr;
  std::size_t gather_bytes = 0;
  void* stack = nullptr;
};

// A guard page under each stack turns an overflow into a fault, not a silent overwrite.
constexpr std::size_t kStackBytes = std::size_t{64} << 10;
constexpr std::size_t kGuardBytes = std::size_t{4} << 10;

struct Block {
  std::vector<Fiber> fibers;
  Context sched;
  Fiber* running = nullptr;
  const std::function<void()>* body = nullptr;
  void* smem = nullptr;
  std::string failure;
#if defined(SB_EMU_ASAN)
  const void* sched_stack = nullptr;
  std::size_t sched_stack_size = 0;
#endif
};

// SB_EMU_SMS=N (1 to 1024) emulates N SMs, e.g. 132 for the launch configurations an H100 gets.
Device make_device() {
  Device d;
  if (const char* v = std::getenv("SB_EMU_SMS")) {
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < 1 || n > 1024) {
      std::fprintf(stderr, "cuda_emu: SB_EMU_SMS=%s: expected an SM count from 1 to 1024\n", v);
      std::exit(2);
    }
    d.sm_count = static_cast<int>(n);
  }
  return d;
}
Device g_device = make_device();
Block* g_block = nullptr;
const ThreadState g_outside{};
std::vector<void*> g_stacks;           // fiber stacks, reused across blocks and launches
std::vector<bool> g_stack_dirty;       // the last fiber on it stopped inside the kernel (aborted)
std::map<const void*, int> g_smem_optin;  // cudaFuncAttributeMaxDynamicSharedMemorySize per kernel
cudaError_t g_last_error = cudaSuccess;
std::string g_failure;
long long g_launches = 0;  // seeds each launch's scheduling order

void* stack_at(std::size_t i) {
  while (g_stacks.size() <= i) {
    void* p = mmap(nullptr, kGuardBytes + kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || mprotect(p, kGuardBytes, PROT_NONE) != 0) {
      std::fprintf(stderr, "cuda_emu: cannot map a fiber stack\n");
      std::abort();
    }
    g_stacks.push_back(static_cast<char*>(p) + kGuardBytes);
    g_stack_dirty.push_back(false);
  }
#if defined(SB_EMU_ASAN)
  // The redzones of frames a fiber never returned from: fiber_main's, at the top of the stack, or
  // anywhere for a fiber that was stopped inside the kernel.
  const std::size_t top = std::size_t{16} << 10;
  if (g_stack_dirty[i])
    ASAN_UNPOISON_MEMORY_REGION(g_stacks[i], kStackBytes);
  else
    ASAN_UNPOISON_MEMORY_REGION(static_cast<char*>(g_stacks[i]) + kStackBytes - top, top);
#endif
  g_stack_dirty[i] = false;
  return g_stacks[i];
}

// Fiber -> scheduler. A fiber that will not run again passes `final`.
void to_scheduler(Fiber& f, bool final) {
#if defined(SB_EMU_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(final ? nullptr : &fake, g_block->sched_stack, g_block->sched_stack_size);
  context_switch(f.ctx, g_block->sched);
  __sanitizer_finish_switch_fiber(fake, &g_block->sched_stack, &g_block->sched_stack_size);
#else
  (void)final;
  context_switch(f.ctx, g_block->sched);
#endif
}

// Scheduler -> fiber, until it waits or ends.
void run_fiber(Block& b, Fiber& f) {
  b.running = &f;
  f.wait = Wait::running;
#if defined(SB_EMU_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack, kStackBytes);
  context_switch(b.sched, f.ctx);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  context_switch(b.sched, f.ctx);
#endif
  b.running = nullptr;
}

void fiber_main() {
#if defined(SB_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &g_block->sched_stack, &g_block->sched_stack_size);
#endif
  Fiber& f = *g_block->running;
  (*g_block->body)();
  f.wait = Wait::done;
  to_scheduler(f, true);
}

// The running thread stops here for good: the launch fails with `what`.
void fail(const std::string& what) {
  Fiber& f = *g_block->running;
  if (g_block->failure.empty()) g_block->failure = what;
  f.wait = Wait::aborted;
  g_stack_dirty[static_cast<std::size_t>(&f - g_block->fibers.data())] = true;
  to_scheduler(f, true);
}

Fiber& self(const char* op) {
  if (!g_block || !g_block->running) {
    std::fprintf(stderr, "cuda_emu: %s called outside a kernel\n", op);
    std::abort();
  }
  return *g_block->running;
}

std::string where(const Fiber& f) {
  return fmt::format("block ({},{},{}) thread ({},{},{})", f.st.block_idx.x, f.st.block_idx.y, f.st.block_idx.z,
                     f.st.thread_idx.x, f.st.thread_idx.y, f.st.thread_idx.z);
}

bool is_warp_op(Wait w) { return w == Wait::warp_sync || w == Wait::warp_shfl || w == Wait::warp_gather; }

// One round of releases once every fiber waits or has ended: warps whose 32 lanes all wait at the
// same warp operation, else the block barrier when every thread waits there. Returns false with
// b.failure set when the block can make no progress.
bool release(Block& b) {
  bool released = false;
  const std::size_t n = b.fibers.size();
  for (std::size_t w0 = 0; w0 < n; w0 += 32) {
    const std::size_t w1 = std::min(n, w0 + 32);
    int at_warp_op = 0, ended = 0, at_barrier = 0;
    Wait kind = Wait::running;
    bool mixed = false;
    for (std::size_t i = w0; i < w1; ++i) {
      const Wait w = b.fibers[i].wait;
      if (is_warp_op(w)) {
        if (at_warp_op > 0 && w != kind) mixed = true;
        kind = w;
        ++at_warp_op;
      } else if (w == Wait::done) {
        ++ended;
      } else if (w == Wait::block_barrier) {
        ++at_barrier;
      }
    }
    if (at_warp_op == 0) continue;
    const std::size_t warp = w0 / 32;
    if (w1 - w0 < 32) {
      b.failure = fmt::format("warp {} of block ({},{},{}) has {} threads: a full-mask warp operation needs 32", warp,
                              b.fibers[w0].st.block_idx.x, b.fibers[w0].st.block_idx.y, b.fibers[w0].st.block_idx.z, w1 - w0);
      return false;
    }
    if (ended > 0 || at_barrier > 0 || mixed) {
      b.failure = fmt::format(
          "warp {} of {}: {} lanes wait at a full-mask warp operation while {} have exited and {} wait at __syncthreads{}",
          warp, where(b.fibers[w0]), at_warp_op, ended, at_barrier, mixed ? " (and the lanes wait at different warp operations)" : "");
      return false;
    }
    if (kind == Wait::warp_shfl)
      for (std::size_t i = w0; i < w1; ++i) b.fibers[i].shfl_out = b.fibers[w0 + b.fibers[i].shfl_src].shfl_in;
    if (kind == Wait::warp_gather) {
      for (std::size_t i = w0; i < w1; ++i)
        if (b.fibers[i].gather_bytes != b.fibers[w0].gather_bytes) {
          b.failure = fmt::format("warp {} of {}: lanes gather different sizes ({} and {} bytes)", warp, where(b.fibers[w0]),
                                  b.fibers[w0].gather_bytes, b.fibers[i].gather_bytes);
          return false;
        }
      const std::size_t bytes = b.fibers[w0].gather_bytes;
      for (std::size_t i = w0; i < w1; ++i)
        for (std::size_t j = w0; j < w1; ++j)
          std::memcpy(static_cast<char*>(b.fibers[i].gather_out) + (j - w0) * bytes, b.fibers[j].gather_in, bytes);
    }
    for (std::size_t i = w0; i < w1; ++i) b.fibers[i].wait = Wait::running;
    released = true;
  }
  if (released) return true;
  int at_barrier = 0, ended = 0;
  for (const Fiber& f : b.fibers) {
    at_barrier += f.wait == Wait::block_barrier;
    ended += f.wait == Wait::done;
  }
  if (at_barrier > 0 && ended > 0) {
    b.failure = fmt::format("{}: {} threads wait at __syncthreads while {} have exited (a barrier in divergent code)",
                            where(b.fibers[0]), at_barrier, ended);
    return false;
  }
  if (at_barrier == static_cast<int>(b.fibers.size())) {
    for (Fiber& f : b.fibers) f.wait = Wait::running;
    return true;
  }
  b.failure = fmt::format("{}: deadlock", where(b.fibers[0]));
  return false;
}

// The order the scheduler runs a block's runnable fibers in, drawn afresh every round (seeded per
// launch, so a failure repeats): a kernel that needs a barrier it lacks reads a slot another
// thread has not written yet (NaN) in some order, whichever thread writes it.
std::uint64_t g_order_state = 0x9E3779B97F4A7C15ull;
std::uint64_t next_random() {  // splitmix64
  std::uint64_t z = (g_order_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

bool run_block(Block& b, dim3 grid, dim3 block, uint3 bid) {
  const std::size_t threads = static_cast<std::size_t>(block.x) * block.y * block.z;
  b.fibers.assign(threads, Fiber{});
  for (std::size_t i = 0; i < threads; ++i) {
    Fiber& f = b.fibers[i];
    f.st.block_idx = bid;
    f.st.block_dim = block;
    f.st.grid_dim = grid;
    f.st.thread_idx = uint3{static_cast<unsigned>(i % block.x), static_cast<unsigned>(i / block.x % block.y),
                            static_cast<unsigned>(i / (static_cast<std::size_t>(block.x) * block.y))};
    f.stack = stack_at(i);
    context_init(f.ctx, f.stack, kStackBytes, fiber_main);
  }
  std::vector<std::size_t> order(threads);
  for (std::size_t i = 0; i < threads; ++i) order[i] = i;
  for (;;) {
    // Forward, backward or shuffled, in turn at random.
    switch (next_random() % 3) {
      case 0: for (std::size_t i = 0; i < threads; ++i) order[i] = i; break;
      case 1: for (std::size_t i = 0; i < threads; ++i) order[i] = threads - 1 - i; break;
      default:
        for (std::size_t i = threads; i > 1; --i) std::swap(order[i - 1], order[next_random() % i]);
    }
    bool any_live = false;
    for (std::size_t i : order) {
      Fiber& f = b.fibers[i];
      if (f.wait == Wait::running) run_fiber(b, f);
      if (!b.failure.empty()) return false;
      any_live = any_live || f.wait != Wait::done;
    }
    if (!any_live) return true;
    if (!release(b)) return false;
  }
}

}  // namespace

const Device& device() { return g_device; }

const ThreadState& current() { return g_block && g_block->running ? g_block->running->st : g_outside; }

void* dynamic_smem_base() { return g_block ? g_block->smem : nullptr; }

void syncthreads() {
  Fiber& f = self("__syncthreads");
  f.wait = Wait::block_barrier;
  to_scheduler(f, false);
}

void syncwarp(unsigned mask) {
  Fiber& f = self("__syncwarp");
  if (mask != 0xffffffffu) fail(fmt::format("{}: __syncwarp with mask {:#x} (the emulator models full masks only)", where(f), mask));
  f.wait = Wait::warp_sync;
  to_scheduler(f, false);
}

void warp_allgather(const void* in, std::size_t bytes, void* out) {
  Fiber& f = self("warp_allgather");
  f.gather_in = in;
  f.gather_out = out;
  f.gather_bytes = bytes;
  f.wait = Wait::warp_gather;
  to_scheduler(f, false);
}

std::uint64_t shfl_xor(unsigned mask, std::uint64_t bits, int lane_mask, int width) {
  Fiber& f = self("__shfl_xor_sync");
  if (mask != 0xffffffffu) fail(fmt::format("{}: __shfl_xor_sync with mask {:#x} (the emulator models full masks only)", where(f), mask));
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    fail(fmt::format("{}: __shfl_xor_sync width {} (a power of two up to 32)", where(f), width));
  const std::size_t index = static_cast<std::size_t>(&f - g_block->fibers.data());
  const int lane = static_cast<int>(index % 32);
  int src = lane ^ (lane_mask & 31);
  // CUDA: a lane may read an earlier group of `width` lanes, never a later one (it gets its own).
  if (src / width > lane / width) src = lane;
  f.shfl_in = bits;
  f.shfl_src = src;
  f.wait = Wait::warp_shfl;
  to_scheduler(f, false);
  return f.shfl_out;
}

void check_aligned(const void* p, std::size_t bytes) {
  if (bytes > 1 && (bytes & (bytes - 1)) == 0 && reinterpret_cast<std::uintptr_t>(p) % bytes != 0) {
    Fiber& f = self("a vector access");
    fail(fmt::format("{}: misaligned {}-byte access at {}", where(f), bytes, p));
  }
}

cudaError_t launch(const void* kernel, dim3 grid, dim3 block, std::size_t smem, const std::function<void()>& body) {
  ++g_launches;
  g_order_state = 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(g_launches);
  auto refuse = [](cudaError_t e, std::string why) {
    g_failure = std::move(why);
    g_last_error = e;
    return e;
  };
  const unsigned long long threads = static_cast<unsigned long long>(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64)
    return refuse(cudaErrorInvalidConfiguration, fmt::format("block ({},{},{}): 1 to 1024 threads", block.x, block.y, block.z));
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
    return refuse(cudaErrorInvalidConfiguration,
                  fmt::format("grid ({},{},{}): x 1 to 2^31 - 1, y and z 1 to 65535", grid.x, grid.y, grid.z));
  const auto optin = g_smem_optin.find(kernel);
  const std::size_t smem_limit = optin != g_smem_optin.end() ? static_cast<std::size_t>(optin->second) : std::size_t{48} << 10;
  if (smem > smem_limit)
    return refuse(cudaErrorInvalidValue, fmt::format("{} bytes of dynamic shared memory, over the kernel's {} (opt in with "
                                                     "cudaFuncAttributeMaxDynamicSharedMemorySize)",
                                                     smem, smem_limit));
  Block b;
  b.body = &body;
  std::unique_ptr<unsigned char[]> smem_buf;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        // Exactly `smem` bytes (AddressSanitizer sees a read past them), NaN in f32, f16 and bf16.
        smem_buf.reset(smem > 0 ? new unsigned char[smem] : nullptr);
        if (smem > 0) std::memset(smem_buf.get(), 0xFF, smem);
        b.smem = smem_buf.get();
        b.failure.clear();
        g_block = &b;
        const bool ok = run_block(b, grid, block, uint3{x, y, z});
        g_block = nullptr;
        if (!ok) {
          // Every fiber of the block may have stopped inside the kernel: its stack is dirty.
          for (std::size_t i = 0; i < b.fibers.size(); ++i) g_stack_dirty[i] = true;
          return refuse(cudaErrorLaunchFailure, b.failure);
        }
      }
  return cudaSuccess;
}

std::string last_failure() { return g_failure; }

}  // namespace sb::emu

// The CUDA runtime, as far as our launchers use it (declared by cuda_runtime_api.h).
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = sb::emu::g_device.sm_count; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(sb::emu::g_device.smem_optin); return cudaSuccess;
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaErrorInvalidValue;
  if (value < 0 || static_cast<std::size_t>(value) > sb::emu::g_device.smem_optin) return cudaErrorInvalidValue;
  sb::emu::g_smem_optin[func] = value;
  return cudaSuccess;
}

// An H100's limits per SM: 2048 threads, 32 blocks, 228 KB of shared memory (1 KB of it reserved
// per block); registers are not modelled.
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void*, int threads, size_t smem) {
  if (threads < 1 || threads > 1024) return cudaErrorInvalidValue;
  int n = std::min(2048 / threads, 32);
  if (smem > 0) n = std::min<int>(n, static_cast<int>((std::size_t{228} << 10) / (smem + 1024)));
  *blocks = n;
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = sb::emu::g_last_error;
  sb::emu::g_last_error = cudaSuccess;
  return e;
}
