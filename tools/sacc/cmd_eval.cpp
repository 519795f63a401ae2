// `sacc eval niah|ruler|ppl|recall`: accuracy of sparse prefill against dense on a real model.
#include "attention/kernel_tile.h"
#include "tools/sacc/commands.h"
#include "tools/sacc/eval_niah.h"
#include "tools/sacc/eval_quality.h"
#include "tools/sacc/eval_ruler.h"
#include "tools/sacc/linear_option.h"
#include "tools/sacc/threads_option.h"

namespace sacc::cli {

void add_eval_command(CLI::App& app, CommandBody& body) {
  CLI::App* eval = app.add_subcommand("eval", "accuracy of sparse attention against dense on a real model");
  eval->require_subcommand(1);
  const std::string settings_help =
      "';'-separated sparse settings compared with dense: pattern strings (interval-slash:64,512), "
      "config:FILE, or cudnn (dense attention through cuDNN, CUDA only: how far two exact attentions' "
      "roundings "
      "alone move the answers)";

  auto niah = std::make_shared<NiahArgs>();
  CLI::App* n =
      eval->add_subcommand("niah", "needle in a haystack: exact-match grid over lengths x 11 depths");
  n->add_option("-m,--model", niah->model, "HF model directory or .gguf file (needs a tokenizer)")
      ->required();
  n->add_option("--lengths", niah->lengths, "prompt lengths in tokens (default 1000 2000 4000)")
      ->delimiter(',');
  n->add_option("--sparse", niah->sparse, settings_help);
  n->add_option("--text", niah->text_path, "prose for the haystack (default: Debian's Jargon File)");
  add_threads_option(n);
  n->add_option("--device", niah->device, "cpu or cuda[:N] (default: cuda when present)");
  n->add_option("--out", niah->out_dir, "folder for niah.json and one PNG heat map per setting");
  n->add_option("--seed", niah->seed, "needle numbers (default 1)");
  add_linear_option(n, niah->linear);
  n->callback([&body, niah] { body = [niah] { return run_eval_niah(*niah); }; });

  auto ruler = std::make_shared<RulerArgs>();
  CLI::App* u = eval->add_subcommand(
      "ruler",
      "RULER-style tasks (needles, key-value retrieval, variable tracking, common words) per length");
  u->add_option("-m,--model", ruler->model, "HF model directory or .gguf file (needs a tokenizer)")
      ->required();
  u->add_option("--lengths", ruler->lengths, "prompt lengths in tokens (default 4000 8000)")->delimiter(',');
  u->add_option("--tasks", ruler->tasks,
                "all, or a comma list of niah_single, niah_multikey, niah_multivalue, niah_multiquery, "
                "kv_retrieval, variable_tracking, common_words (default all)");
  u->add_option("--samples", ruler->samples, "prompts per task and length (default 25)");
  u->add_option("--sparse", ruler->sparse, settings_help);
  u->add_option("--text", ruler->text_path, "prose for the haystacks (default: Debian's Jargon File)");
  add_threads_option(u);
  u->add_option("--device", ruler->device, "cpu or cuda[:N] (default: cuda when present)");
  u->add_option("--out", ruler->out_dir, "folder for ruler.json, ruler.md and ruler.png");
  u->add_option("--seed", ruler->seed, "every prompt derives from it (default 1)");
  u->add_option("--max-new-tokens", ruler->max_new_tokens,
                "answer tokens per prompt (default: 32-96, as each task's answer needs)");
  add_linear_option(u, ruler->linear);
  u->callback([&body, ruler] { body = [ruler] { return run_eval_ruler(*ruler); }; });

  auto ppl = std::make_shared<PplArgs>();
  CLI::App* p =
      eval->add_subcommand("ppl", "perplexity of the last positions of a long text, dense vs sparse");
  p->add_option("-m,--model", ppl->model, "HF model directory or .gguf file (needs a tokenizer)")->required();
  p->add_option("--length", ppl->length, "prompt tokens (default 4096)");
  p->add_option("--last", ppl->last, "positions scored at the end (default 1024)");
  p->add_option("--sparse", ppl->sparse, settings_help);
  p->add_option("--text", ppl->text_path, "the text (default: Debian's Jargon File)");
  add_threads_option(p);
  p->add_option("--device", ppl->device, "cpu or cuda[:N] (default: cuda when present)");
  p->add_option("--out", ppl->out_path, "JSON results file");
  add_linear_option(p, ppl->linear);
  p->callback([&body, ppl] { body = [ppl] { return run_eval_ppl(*ppl); }; });

  auto recall = std::make_shared<RecallArgs>();
  CLI::App* r =
      eval->add_subcommand("recall", "per layer and head: attention recall and O error of each setting");
  r->add_option("-m,--model", recall->model, "HF model directory or .gguf file (needs a tokenizer)")
      ->required();
  r->add_option("--length", recall->length, "prompt tokens (default 2048)");
  r->add_option("--layers", recall->layers, "layers to measure (default every fourth)")->delimiter(',');
  r->add_option("--sparse", recall->sparse,
                "';'-separated sparse settings compared with dense: pattern strings (interval-slash:64,512), "
                "config:FILE, or oracle@G (per query block the fewest key blocks whose exact attention mass "
                "reaches G: the least density any block estimator needs for that recall)");
  r->add_option("--text", recall->text_path, "the text (default: Debian's Jargon File)");
  add_threads_option(r);
  r->add_option("--device", recall->device,
                "cpu or cuda[:N]: where the prefill that yields Q/K/V runs (default: cuda when present)");
  r->add_option("--block-q", recall->block_q,
                fmt::format("query block rows (default {}: the kernel tile)", kTileBlockQ));
  r->add_option("--block-k", recall->block_k,
                fmt::format("key block width (default {}: the kernel tile)", kTileBlockK));
  r->add_option("--dump-qkv", recall->dump_qkv_dir,
                "write the layers' real Q/K/V as layer_<i>.safetensors here");
  r->add_option("--out", recall->out_path, "JSON results file");
  add_linear_option(r, recall->linear);
  r->callback([&body, recall] { body = [recall] { return run_eval_recall(*recall); }; });
}

}  // namespace sacc::cli
