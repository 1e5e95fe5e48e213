DROP TABLE batch_rejections;
