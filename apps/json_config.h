#pragma once
// JSON configuration files for the commands: `sdegen train --config run.json` reads any of the
// command's long options from a JSON object ({"data": "moons", "steps": 4000, "model-config":
// {"schedule": "trig"}}), with the flags given on the command line taking precedence. Keys may
// use dashes or underscores; unknown keys are refused. The same format records a run.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace sdegen::app {

class JsonConfig : public CLI::Config {
 public:
  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

// Adds --config FILE.json to a command; call apply_json_config first thing in its callback.
void add_json_config(CLI::App* command, std::string* path);

// Gives each option named in the JSON file that was not on the command line the file's value
// (validated like a flag). Throws InvalidArgument for an unreadable file or an unknown key.
void apply_json_config(CLI::App* command, const std::string& path);
// The same with the file's text (`path` names it in messages).
void apply_json_config_text(CLI::App* command, const std::string& text, const std::string& path);

// Every option of the command (the value given, else its default) as one JSON object, the same
// format --config reads.
nlohmann::json options_json(const CLI::App& command);

}  // namespace sdegen::app
