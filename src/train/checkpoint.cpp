// Checkpoints: one file per (model, recipe, pattern, sparsity, seed), checksummed.
//
// Layout: "SBCKPT01", u64 little-endian header length, the header (JSON: key, the model's
// Graph::signature, meta, and per tensor its name, dtype, shape and byte count), the tensors' bytes back to back, then the CRC-32
// (zlib) of everything after the magic. A file that fails any check is reported, never trusted.
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sparsebench/core/error.h"
#include "sparsebench/core/hash.h"
#include "sparsebench/prune/mask.h"
#include "sparsebench/train/train.h"

namespace sb {

namespace {

constexpr char kMagic[8] = {'S', 'B', 'C', 'K', 'P', 'T', '0', '1'};
constexpr const char* kMaskKey = "__mask__";

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_';
  return out;
}

}  // namespace

std::string checkpoint_key(const std::string& model, const TrainRecipe& recipe, const Pattern& pattern,
                           double sparsity, std::uint64_t seed, const std::string& extra) {
  return fmt::format("model={};recipe={};pattern={};sparsity={:.6f};seed={}{}{}", model, recipe.to_string(),
                     pattern.to_string(), sparsity, seed, extra.empty() ? "" : ";", extra);
}

std::string checkpoint_path(const std::string& cache_dir, const std::string& key, const std::string& model) {
  return (std::filesystem::path(cache_dir) / fmt::format("{}-{:016x}.sbckpt", sanitize(model), fnv1a64(key))).string();
}

void save_checkpoint(const std::string& path, const std::string& key, const Graph& graph, const std::string& meta) {
  nlohmann::json header;
  header["key"] = key;
  header["graph"] = graph.signature();
  header["meta"] = meta;
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const Node& n : graph.nodes()) {
    for (const auto& [k, t] : n.params) tensors.emplace_back(n.name + "." + k, t.contiguous());
    if (n.mask.defined()) tensors.emplace_back(n.name + "." + kMaskKey, n.mask.contiguous());
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, t] : tensors)
    list.push_back({{"name", name}, {"dtype", std::string(dtype_name(t.dtype()))}, {"shape", t.shape()},
                    {"bytes", t.nbytes()}});
  header["tensors"] = list;
  nlohmann::json patterns = nlohmann::json::object();
  for (const Node& n : graph.nodes())
    if (n.mask.defined()) patterns[n.name] = n.pattern.to_string();
  header["patterns"] = patterns;
  const std::string htext = header.dump();

  std::string body;
  const std::uint64_t hlen = htext.size();
  body.append(reinterpret_cast<const char*>(&hlen), sizeof hlen);
  body += htext;
  for (const auto& [name, t] : tensors) body.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  const std::uint32_t crc = static_cast<std::uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));

  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    SB_CHECK(f.good(), "checkpoint {}: cannot write", tmp);
    f.write(kMagic, sizeof kMagic);
    f.write(body.data(), static_cast<std::streamsize>(body.size()));
    f.write(reinterpret_cast<const char*>(&crc), sizeof crc);
    SB_CHECK(f.good(), "checkpoint {}: write failed (disk full?)", tmp);
  }
  std::filesystem::rename(tmp, path);
}

bool load_checkpoint(const std::string& path, const std::string& key, Graph& graph, std::string& meta,
                     std::string& why) {
  if (!std::filesystem::exists(path)) {
    why = "no checkpoint yet";
    return false;
  }
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string all = ss.str();
  if (all.size() < sizeof kMagic + 8 + 4 || std::memcmp(all.data(), kMagic, sizeof kMagic) != 0) {
    why = fmt::format("{}: not a sparsebench checkpoint (bad magic or too short)", path);
    return false;
  }
  const std::string body = all.substr(sizeof kMagic, all.size() - sizeof kMagic - 4);
  std::uint32_t stored;
  std::memcpy(&stored, all.data() + all.size() - 4, 4);
  const auto crc = static_cast<std::uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
  if (crc != stored) {
    why = fmt::format("{}: checksum mismatch (corrupt file)", path);
    return false;
  }
  std::uint64_t hlen;
  std::memcpy(&hlen, body.data(), sizeof hlen);
  if (hlen > body.size() - sizeof hlen) {
    why = fmt::format("{}: header length out of range", path);
    return false;
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(body.substr(sizeof hlen, hlen));
  } catch (const std::exception& e) {
    why = fmt::format("{}: unreadable header: {}", path, e.what());
    return false;
  }
  if (header.value("key", "") != key) {
    why = fmt::format("{}: made for another key ({})", path, header.value("key", "?"));
    return false;
  }
  // Files written before signatures existed have none: their tensors' names and shapes are still
  // checked below, which catches every change of the small zoo up to now (widths, layers).
  if (header.contains("graph") && header["graph"] != graph.signature()) {
    why = fmt::format("{}: made for another definition of the model (signature {}, this build's {})", path,
                      header["graph"].dump(), graph.signature());
    return false;
  }
  // Read everything into a copy first, so that a mismatch leaves `graph` untouched.
  Graph g = graph.clone();
  for (Node& n : g.nodes()) {
    n.mask = Tensor();
    n.sparsity = 0;
    n.pattern = Pattern{};
  }
  std::size_t offset = sizeof hlen + hlen;
  std::size_t params_seen = 0, params_total = 0;
  for (const Node& n : g.nodes()) params_total += n.params.size();
  try {
    for (const auto& e : header.at("tensors")) {
      const std::string name = e.at("name");
      const DType dt = parse_dtype(e.at("dtype").get<std::string>());
      const Shape shape = e.at("shape").get<Shape>();
      const std::size_t bytes = e.at("bytes");
      if (offset + bytes > body.size() || bytes != static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dt)) {
        why = fmt::format("{}: tensor '{}' runs past the end of the file", path, name);
        return false;
      }
      const auto dot = name.rfind('.');
      const int ni = dot == std::string::npos ? -1 : g.find_node(name.substr(0, dot));
      if (ni < 0) {
        why = fmt::format("{}: tensor '{}' belongs to no node of model", path, name);
        return false;
      }
      Node& n = g.nodes()[static_cast<std::size_t>(ni)];
      const std::string k = name.substr(dot + 1);
      Tensor t = Tensor::empty(shape, dt);
      std::memcpy(t.raw_data(), body.data() + offset, bytes);
      offset += bytes;
      if (k == kMaskKey) {
        if (!n.has_weight() || shape != n.param("weight").shape() || dt != DType::u8) {
          why = fmt::format("{}: mask of '{}' does not fit the layer", path, n.name);
          return false;
        }
        n.mask = t;
        n.sparsity = mask_sparsity(t);
        n.pattern = Pattern::parse(header.at("patterns").at(n.name).get<std::string>());
        continue;
      }
      auto it = n.params.find(k);
      if (it == n.params.end() || it->second.shape() != shape || dt != it->second.dtype()) {
        why = fmt::format("{}: tensor '{}' {} does not match the model's parameter", path, name,
                          shape_to_string(shape));
        return false;
      }
      it->second = t;
      ++params_seen;
    }
  } catch (const std::exception& e) {
    why = fmt::format("{}: malformed header: {}", path, e.what());
    return false;
  }
  if (params_seen != params_total || offset != body.size()) {
    why = fmt::format("{}: holds {} of the model's {} parameters", path, params_seen, params_total);
    return false;
  }
  meta = header.value("meta", "");
  graph = std::move(g);
  return true;
}

}  // namespace sb
