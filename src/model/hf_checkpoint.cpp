#include "model/hf_checkpoint.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/progress.h"

namespace sacc {
namespace fs = std::filesystem;
namespace {

Result<nlohmann::json> read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return make_error(StatusCode::NOT_FOUND, "{}: cannot open", path.string());
  nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
  if (json.is_discarded()) return make_error(StatusCode::CORRUPT_DATA, "{}: not valid JSON", path.string());
  return json;
}

// Shard file names in first-use order from model.safetensors.index.json's weight_map.
Result<std::vector<std::string>> shard_names(const fs::path& index_path,
                                             std::map<std::string, std::string>& weight_map) {
  SACC_ASSIGN_OR_RETURN(nlohmann::json index, read_json(index_path));
  auto map = index.find("weight_map");
  if (map == index.end() || !map->is_object())
    return make_error(StatusCode::CORRUPT_DATA, "{}: no 'weight_map' object", index_path.string());
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (!it.value().is_string())
      return make_error(StatusCode::CORRUPT_DATA, "{}: weight_map['{}'] is not a file name",
                        index_path.string(), it.key());
    const std::string file = it.value().get<std::string>();
    if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
      return make_error(StatusCode::CORRUPT_DATA, "{}: shard name '{}' leaves the model directory",
                        index_path.string(), file);
    weight_map[it.key()] = file;
    if (seen.insert(file).second) names.push_back(file);
  }
  return names;
}

}  // namespace

bool HfCheckpoint::has_tokenizer() const {
  return fs::exists(fs::path(directory_) / "tokenizer.json");
}

Result<HfCheckpoint> HfCheckpoint::open(const std::string& directory, bool show_progress) {
  const fs::path dir(directory);
  if (!fs::is_directory(dir)) return make_error(StatusCode::NOT_FOUND, "{}: not a directory", directory);
  HfCheckpoint ckpt;
  ckpt.directory_ = directory;
  SACC_ASSIGN_OR_RETURN(ckpt.config_, model_config_from_hf_file((dir / "config.json").string()));
  ckpt.config_.name =
      dir.filename().empty() ? dir.parent_path().filename().string() : dir.filename().string();
  const fs::path generation = dir / "generation_config.json";
  if (fs::exists(generation)) {
    SACC_ASSIGN_OR_RETURN(nlohmann::json gen, read_json(generation));
    std::vector<int32_t> eos;
    if (auto it = gen.find("eos_token_id"); it != gen.end()) {
      if (it->is_number_integer()) eos.push_back(it->get<int32_t>());
      if (it->is_array())
        for (const auto& v : *it)
          if (v.is_number_integer()) eos.push_back(v.get<int32_t>());
    }
    if (!eos.empty()) ckpt.config_.eos_tokens = eos;
    if (auto it = gen.find("bos_token_id"); it != gen.end() && it->is_number_integer())
      ckpt.config_.bos_token = it->get<int32_t>();
  }

  std::map<std::string, std::string> weight_map;
  std::vector<std::string> shards;
  const fs::path index_path = dir / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    SACC_ASSIGN_OR_RETURN(shards, shard_names(index_path, weight_map));
  } else if (fs::exists(dir / "model.safetensors")) {
    shards = {"model.safetensors"};
  } else {
    return make_error(StatusCode::NOT_FOUND, "{}: no model.safetensors or model.safetensors.index.json",
                      directory);
  }
  Progress progress("mapping safetensors shards", static_cast<int64_t>(shards.size()), show_progress);
  for (const std::string& shard : shards) {
    SACC_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open((dir / shard).string()));
    const size_t file_index = ckpt.files_.size();
    for (const std::string& name : file.names()) {
      auto listed = weight_map.find(name);
      if (!weight_map.empty() && listed != weight_map.end() && listed->second != shard)
        return make_error(StatusCode::CORRUPT_DATA, "{}: index lists '{}' in {}, but it is in {}",
                          index_path.string(), name, listed->second, shard);
      ckpt.tensor_file_[name] = file_index;
      Result<TensorView> view = file.tensor(name);
      if (view) ckpt.tensor_bytes_ += view->nbytes();
    }
    ckpt.files_.push_back(std::make_shared<const SafetensorsFile>(std::move(file)));
    progress.advance();
  }
  for (const auto& [name, shard] : weight_map)
    if (!ckpt.tensor_file_.count(name))
      return make_error(StatusCode::CORRUPT_DATA,
                        "{}: index lists '{}' in {}, but that shard does not hold it", index_path.string(),
                        name, shard);
  return ckpt;
}

Result<LlamaWeights> HfCheckpoint::weights() const {
  TensorLookup lookup = [this](const std::string& name) -> Result<TensorView> {
    auto it = tensor_file_.find(name);
    if (it == tensor_file_.end())
      return make_error(StatusCode::NOT_FOUND, "{}: tensor '{}' is missing from the checkpoint", directory_,
                        name);
    return files_[it->second]->tensor(name);
  };
  SACC_ASSIGN_OR_RETURN(LlamaWeights w, llama_weights_from_lookup(config_, lookup, TensorNaming::HF));
  for (const auto& file : files_) w.storage.push_back(file);
  return w;
}

}  // namespace sacc
