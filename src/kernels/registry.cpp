// The registry: one ordered list of every SpMM implementation, and the dispatch over it.
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "kernels/internal.h"
#include "sparsebench/core/error.h"

namespace sb {

namespace {
constexpr Format kFormats[] = {Format::dense, Format::csr, Format::csc,
                               Format::coo,   Format::bsr, Format::balanced};

std::string shape_text(const SpmmDesc& d) { return fmt::format("{} x {} x {}", d.m, d.k, d.n); }
}  // namespace

const char* format_name(Format f) {
  switch (f) {
    case Format::dense: return "dense";
    case Format::csr: return "csr";
    case Format::csc: return "csc";
    case Format::coo: return "coo";
    case Format::bsr: return "bsr";
    case Format::balanced: return "balanced";
  }
  return "?";
}

Format parse_format(const std::string& text) {
  for (Format f : kFormats)
    if (text == format_name(f)) return f;
  fail(fmt::format("unknown format '{}': expected one of dense, csr, csc, coo, bsr, balanced", text));
}

const char* role_name(Role r) {
  switch (r) {
    case Role::kernel: return "kernel";
    case Role::baseline: return "baseline";
    case Role::peer: return "peer";
    case Role::reference: return "reference";
  }
  return "?";
}

bool verbose_dispatch() {
  const char* v = std::getenv("SB_VERBOSE");
  return v && std::strstr(v, "dispatch") != nullptr;
}

const SpmmRegistry& SpmmRegistry::instance() {
  // Built once (thread-safe static); the order of the hooks is the dispatch order.
  static const SpmmRegistry registry = [] {
    SpmmRegistry r;
    detail::register_cpu_kernels(r);
    detail::register_dense_baselines(r);
    detail::register_peers(r);
    detail::register_reference_kernels(r);
    return r;
  }();
  return registry;
}

const SpmmImpl* SpmmRegistry::find(const std::string& name) const {
  for (const auto& impl : impls_)
    if (impl->name() == name) return impl.get();
  return nullptr;
}

const SpmmImpl& SpmmRegistry::select(const SpmmDesc& desc, const SpmmWeight& w, Format format,
                                     const std::string& forced, std::string* log) const {
  const bool verbose = log && verbose_dispatch();
  if (!forced.empty()) {
    const SpmmImpl* impl = find(forced);
    if (!impl) {
      std::string known;
      for (const auto& i : impls_)
        if (i->format() == format) known += (known.empty() ? "" : ", ") + i->name();
      fail(fmt::format("--kernel {}: no implementation has that name (for {}: {})", forced,
                       format_name(format), known));
    }
    if (impl->format() != format)
      fail(fmt::format("--kernel {}: it runs the {} format, the case asks for {}", forced,
                       format_name(impl->format()), format_name(format)));
    std::string why;
    if (!impl->can_implement(desc, w, &why))
      fail(fmt::format("--kernel {}: cannot run {} {}: {}", forced, format_name(format),
                       shape_text(desc), why));
    if (verbose)
      *log += fmt::format("dispatch: {} {}: chose {} (forced)\n", format_name(format),
                          shape_text(desc), forced);
    return *impl;
  }

  // Ours first, then the dense baseline (the only fast implementation of the dense format), the
  // reference last; peers are compared, never dispatched.
  std::string rejected;
  for (Role role : {Role::kernel, Role::baseline, Role::reference}) {
    for (const auto& impl : impls_) {
      if (impl->format() != format || impl->role() != role) continue;
      std::string why;
      if (impl->can_implement(desc, w, &why)) {
        if (verbose)
          *log += fmt::format("dispatch: {} {}: chose {}{}\n", format_name(format),
                              shape_text(desc), impl->name(), rejected);
        return *impl;
      }
      rejected += fmt::format("; rejected {}: {}", impl->name(), why);
    }
  }
  fail(fmt::format("no implementation can run {} {}{}", format_name(format), shape_text(desc),
                   rejected));
}

}  // namespace sb
