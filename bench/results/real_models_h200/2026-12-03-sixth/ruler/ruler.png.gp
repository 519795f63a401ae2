set terminal pngcairo size 900,500 noenhanced
set output '/root/out/r/ruler/ruler.png'
set title 'RULER /root/sacc/models/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf'
set xlabel 'prompt tokens'
set ylabel 'accuracy (%), mean over 7 tasks'
set yrange [0:105]
set logscale x 2
set xrange [6400:40000]
set grid
set key bottom left
set xtics (8000, 16000, 32000)
plot '/root/out/r/ruler/ruler.dat' using 1:2 with linespoints linewidth 2 pointsize 1.5 title 'dense', '/root/out/r/ruler/ruler.dat' using 1:3 with linespoints linewidth 2 pointsize 1.5 title 'interval-slash:1000,256@0.95+block-cluster:512@0.99', '/root/out/r/ruler/ruler.dat' using 1:4 with linespoints linewidth 2 pointsize 1.5 title 'config:bench/results/real_models_h200/search/qwen_search_4k_x8.json'
